// The file workspace (/files) through the real @openeo/js-client under Node; prints one JSON report.
//
// Usage: node file_calls.mjs <api-url> <user> <password> <work-dir>
// <work-dir> holds the files to upload (small.txt, nested.bin, big.bin, written by the Python test); the
// downloads are written back there as down-<name>. Used by tests/e2e/test_js_files.py, which compares bytes.

import { join } from 'node:path';

import jsClient from '@openeo/js-client';

const { OpenEO } = jsClient;
const [url, user, password, dir] = process.argv.slice(2);
const UPLOADS = { 'small.txt': 'small.txt', 'nested.bin': 'deep/er/nested.bin', 'big.bin': 'big.bin' };

function describeError(error) {
  return { message: error?.message ?? String(error), code: typeof error?.code === 'string' ? error.code : null,
           status: error?.response?.status ?? null };
}

const report = {};
try {
  const con = await OpenEO.connect(url);
  await con.authenticateBasic(user, password);
  report.features = { listFiles: con.capabilities().hasFeature('listFiles'),
                      uploadFile: con.capabilities().hasFeature('uploadFile'),
                      downloadFile: con.capabilities().hasFeature('downloadFile'),
                      deleteFile: con.capabilities().hasFeature('deleteFile') };
  report.uploaded = [];
  for (const [local, target] of Object.entries(UPLOADS)) {
    const file = await con.uploadFile(join(dir, local), target);
    report.uploaded.push({ path: file.path, size: file.size ?? null });
  }
  report.listed = (await con.listFiles()).map(f => ({ path: f.path, size: f.size, modified: f.modified }));
  report.pages = [];
  for await (const page of con.paginateFiles(2)) {
    report.pages.push(page.map(f => f.path));
  }
  for (const target of Object.values(UPLOADS)) {
    const file = await con.getFile(target);
    await file.downloadFile(join(dir, 'down-' + target.replaceAll('/', '_')));
  }
  await (await con.getFile('deep/er/nested.bin')).deleteFile();
  report.after_delete = (await con.listFiles()).map(f => f.path);
  for (const bad of ['.hidden', 'a//b.txt']) {
    try {
      await con.uploadFile(join(dir, 'small.txt'), bad);
      report['refused ' + bad] = { unexpected_success: true };
    } catch (error) {
      report['refused ' + bad] = describeError(error);
    }
  }
} catch (error) {
  report.error = describeError(error);
  process.stderr.write(`${error?.stack ?? error}\n`);
}
process.stdout.write(JSON.stringify(report) + '\n');
process.exit(report.error ? 1 : 0);
