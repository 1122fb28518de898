// UDFs and web services through the real @openeo/js-client under Node; prints one JSON report.
//
// Usage: node capability_calls.mjs <api-url> <user> <password> <work-dir>
// <work-dir> holds udf_graph.json, service_graph.json, bands_graph.json and tile.txt ("z/x/y"), written by
// tests/e2e/test_js_capabilities.py; the UDF result (udf.nc) and the service's tile (tile.png) are written
// back there for that test to check by value.

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import jsClient from '@openeo/js-client';

const { OpenEO } = jsClient;
const [url, user, password, dir] = process.argv.slice(2);
const graph = name => JSON.parse(readFileSync(join(dir, name), 'utf8'));

function describeError(error) {
  return { message: error?.message ?? String(error), code: typeof error?.code === 'string' ? error.code : null,
           status: error?.response?.status ?? null };
}

const report = {};
try {
  const con = await OpenEO.connect(url);
  await con.authenticateBasic(user, password);
  const caps = con.capabilities();
  report.features = Object.fromEntries(['listUdfRuntimes', 'listServiceTypes', 'listServices', 'createService',
    'describeService', 'updateService', 'deleteService', 'debugService'].map(name => [name, caps.hasFeature(name)]));
  report.runtimes = await con.listUdfRuntimes();
  report.service_types = await con.listServiceTypes();

  await con.downloadResult(graph('udf_graph.json'), join(dir, 'udf.nc'));

  const tile = readFileSync(join(dir, 'tile.txt'), 'utf8').trim();
  const service = await con.createService(graph('service_graph.json'), 'XYZ', 'NDVI from JS', null, true,
                                          { range: [-1, 1] });
  report.service = { id: service.id, url: service.url, type: service.type, enabled: service.enabled,
                     title: service.title, configuration: service.configuration };
  const response = await fetch(service.url.replace('{z}/{x}/{y}', tile));  // map clients send no token
  report.tile = { status: response.status, type: response.headers.get('content-type') };
  writeFileSync(join(dir, 'tile.png'), Buffer.from(await response.arrayBuffer()));
  await service.updateService({ title: 'NDVI renamed' });
  report.renamed = (await con.getService(service.id)).title;

  const failing = await con.createService(graph('bands_graph.json'), 'XYZ', 'two bands', null, true, {});
  report.failing_tile_status = (await fetch(failing.url.replace('{z}/{x}/{y}', tile))).status;
  report.logs = await failing.debugService().nextLogs();
  report.listed = (await con.listServices()).map(s => s.id).sort();
  await failing.deleteService();
  report.after_delete = (await con.listServices()).map(s => s.id);
  try {
    await con.getService(failing.id);
    report.deleted_lookup = { unexpected_success: true };
  } catch (error) {
    report.deleted_lookup = describeError(error);
  }
} catch (error) {
  report.error = describeError(error);
  process.stderr.write(`${error?.stack ?? error}\n`);
}
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(report.error ? 1 : 0);
