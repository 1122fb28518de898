// Drives the federation aggregator with the real @openeo/js-client under Node and prints one JSON report.
//
// Usage: node federation_calls.mjs <api-url> <user> <password>
// What the client (and the Web Editor, built on it) reads of a federation: the backends and their statuses
// (listFederation), federation:missing on listings, federation:backends on collections, processes and
// validation results. Used by tests/aggregator/e2e/test_js_client_federation.py; exit code 1 if a call threw.

import jsClient from '@openeo/js-client';

const { OpenEO } = jsClient;

const [url, user, password] = process.argv.slice(2);
if (!url || !user || !password) {
  console.error('usage: node federation_calls.mjs <api-url> <user> <password>');
  process.exit(2);
}

const report = { client_version: OpenEO.clientVersion(), steps: {}, failures: [] };

async function step(name, call) {
  try {
    report.steps[name] = { result: await call() };
  } catch (error) {
    report.steps[name] = { error: { message: error.message, code: error.code, status: error.status } };
    report.failures.push(`${name}: ${error.message}`);
  }
}

const S2 = 'SENTINEL2_L2A_DEMO';
const DEM_GRAPH = {
  load: { process_id: 'load_collection', arguments: { id: 'DEM_DEMO', spatial_extent: null, temporal_extent: null } },
  save: { process_id: 'save_result', arguments: { data: { from_node: 'load' }, format: 'GTiff' }, result: true },
};

const connection = await OpenEO.connect(url);
const capabilities = connection.capabilities();
await step('federation', async () => ({
  backends: capabilities.listFederation(),
  has_federation_conformance: capabilities.hasConformance('https://api.openeo.org/extensions/federation/0.1.0'),
  details_of_a: capabilities.getFederationBackend('A'),
}));
await step('authenticate', async () => {
  await connection.authenticateBasic(user, password);
  return { authenticated: connection.isAuthenticated() };
});
await step('list_collections', async () => {
  const collections = await connection.listCollections();
  return {
    ids: collections.collections.map(c => c.id),
    missing: collections['federation:missing'] ?? null,
    backends: Object.fromEntries(collections.collections.map(c => [c.id, c['federation:backends'] ?? null])),
  };
});
await step('list_processes', async () => {
  const processes = await connection.listProcesses();
  return { count: processes.processes.length, missing: processes['federation:missing'] ?? null };
});
await step('list_file_types', async () => {
  const formats = await connection.listFileTypes();
  return { outputs: Object.keys(formats.getOutputTypes()), missing: formats['federation:missing'] ?? null };
});
await step('list_jobs', async () => {
  const jobs = await connection.listJobs();
  return { count: jobs.length, missing: jobs['federation:missing'] ?? null };
});
await step('validate', async () => {
  const errors = await connection.validateProcess({ process_graph: DEM_GRAPH });
  return { errors: errors.map(e => e.code), backends: errors['federation:backends'] };
});
await step('describe_account', async () => {
  const account = await connection.describeAccount();
  return { name: account.name, budget: account.budget };
});
await step('describe_collection', async () => {
  const collection = await connection.describeCollection(S2);
  return { id: collection.id, backends: collection['federation:backends'] ?? null };
});

console.log(JSON.stringify(report));
process.exit(report.failures.length ? 1 : 0);
