// Shared UDPs and provenance through the real @openeo/js-client under Node; prints one JSON report.
//
// Usage: node sharing_calls.mjs <api-url> <user> <password> <work-dir>
// <work-dir> holds call_graph.json (a call of a published UDP by its URL namespace) and job_graph.json,
// written by tests/e2e/test_js_capabilities.py, which checks the report.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import jsClient from '@openeo/js-client';

const { OpenEO } = jsClient;
const [url, user, password, dir] = process.argv.slice(2);
const graph = name => JSON.parse(readFileSync(join(dir, name), 'utf8'));

const report = {};
try {
  const con = await OpenEO.connect(url);
  await con.authenticateBasic(user, password);
  const result = await con.computeResult(graph('call_graph.json'));
  const chunks = [];
  for await (const chunk of result.data) {
    chunks.push(Buffer.from(chunk));
  }
  report.udp_result = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  report.catalogue = (await (await fetch(url + '/public/process_graphs?limit=1000')).json())  // no token
    .processes.map(p => ({ id: p.id, owner: p.owner, href: p.links[0].href }));

  const job = await con.createJob(graph('job_graph.json'), 'provenance from JS');
  await job.startJob();
  const deadline = Date.now() + 240_000;
  let status = (await job.describeJob()).status;
  while (!['finished', 'error', 'canceled'].includes(status) && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 500));
    status = (await job.describeJob()).status;
  }
  report.job_status = status;
  const stac = await job.getResultsAsStac();
  report.results = { stac_extensions: stac.stac_extensions, providers: stac.providers };
} catch (error) {
  report.error = { message: error?.message ?? String(error), status: error?.response?.status ?? null };
  process.stderr.write(`${error?.stack ?? error}\n`);
}
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(report.error ? 1 : 0);
