// Drives the backend with the real @openeo/js-client under Node and prints one JSON report to stdout.
//
// Usage: node client_calls.mjs <api-url> <user> <password> [<server-root>]
// Environment: OPENEO_JS_DOWNLOAD_DIR, a directory where the batch-job step stores the GeoTIFF it downloaded
// (as job-result.tif), for the Python test to open; OPENEO_JS_JOB_TIMEOUT, seconds the batch job may take
// (default 120).
//
// Every step is recorded in the report (its interesting fields, or {error: {...}} if it threw) with its
// duration in milliseconds. Errors the steps provoke on purpose (wrong password, reading a deleted process
// or job) are part of the report. The exit code is 1 if any step failed unexpectedly (details on stderr), 2 on a
// usage error, 0 otherwise. Used by tests/e2e/test_js_client.py.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import jsClient from '@openeo/js-client';

const { OpenEO } = jsClient;

const S2 = 'SENTINEL2_L2A_DEMO';
const UDP_ID = 'js_plus_one';
const DETAILED_PROCESSES = ['load_collection', 'save_result', 'ndvi', 'reduce_dimension'];
const FEATURES = [
  'capabilities', 'listFileTypes', 'listCollections', 'describeCollection', 'listProcesses', 'describeProcess',
  'authenticateBasic', 'describeAccount', 'validateProcess', 'listUserProcesses', 'describeUserProcess',
  'getUserProcess', 'setUserProcess', 'replaceUserProcess', 'deleteUserProcess',
  'listJobs', 'createJob', 'describeJob', 'updateJob', 'deleteJob', 'estimateJob', 'debugJob', 'startJob',
  'stopJob', 'listResults',
];
// The batch job: mean NDVI of June 2022 over a 960 m x 840 m box of the demo tile, as a GeoTIFF
// (what tests/e2e/test_batch_jobs.py computes with the Python client).
const JOB_TITLE = 'JS NDVI composite';
const JOB_PROCESS = {
  process_graph: {
    load: {
      process_id: 'load_collection',
      arguments: {
        id: S2,
        spatial_extent: { west: 679720, south: 5151080, east: 680680, north: 5151920, crs: 32632 },
        temporal_extent: ['2022-06-01', '2022-07-01'],
        bands: ['B04', 'B08'],
      },
    },
    ndvi: { process_id: 'ndvi', arguments: { data: { from_node: 'load' }, nir: 'B08', red: 'B04' } },
    mean: {
      process_id: 'reduce_dimension',
      arguments: {
        data: { from_node: 'ndvi' },
        dimension: 't',
        reducer: {
          process_graph: {
            mean: { process_id: 'mean', arguments: { data: { from_parameter: 'data' } }, result: true },
          },
        },
      },
    },
    save: {
      process_id: 'save_result', arguments: { data: { from_node: 'mean' }, format: 'GTiff' }, result: true,
    },
  },
};
const JOB_DONE = ['finished', 'error', 'canceled'];
const downloadDir = process.env.OPENEO_JS_DOWNLOAD_DIR || null;
const jobTimeoutMs = 1000 * Number(process.env.OPENEO_JS_JOB_TIMEOUT || 120);
const sleep = ms => new Promise(resolve => { setTimeout(resolve, ms); });

const [url, user, password, root] = process.argv.slice(2);
if (!url || !user || password === undefined) {
  process.stderr.write('usage: node client_calls.mjs <api-url> <user> <password> [<server-root>]\n');
  process.exit(2);
}

// The client reports some problems (e.g. a missing well-known document) only through console.warn/error.
// They are recorded with the step during which they were emitted.
let warnings = [];
for (const level of ['warn', 'error']) {
  console[level] = (...args) => {
    const text = args.map(a => (a instanceof Error ? a.message : String(a))).join(' ');
    warnings.push(`console.${level}: ${text}`);
    process.stderr.write(`[console.${level}] ${text}\n`);
  };
}

const report = { client_version: OpenEO.clientVersion(), node_version: process.version, steps: {} };
const failures = [];

function describeError(error) {
  const response = error && error.response;
  return {
    message: error && error.message,
    code: error && typeof error.code === 'string' ? error.code : null,
    id: error && error.id !== undefined ? error.id : null,
    status: response ? response.status : null,
    url: error && error.config ? `${error.config.method} ${error.config.baseURL || ''}${error.config.url}` : null,
  };
}

// Runs one step; records {ms, result} or {ms, error}. `expectError` steps must throw: their error is the result.
async function step(name, fn, { expectError = false } = {}) {
  const started = performance.now();
  const entry = {};
  report.steps[name] = entry;
  warnings = [];
  try {
    const value = await fn();
    entry.result = value === undefined ? null : value;
    if (expectError) {
      entry.unexpected_success = true;
      failures.push(`${name}: expected an error, but the call succeeded`);
    }
  } catch (error) {
    const described = describeError(error);
    if (expectError) {
      entry.result = described;
    } else {
      entry.error = described;
      failures.push(`${name}: ${JSON.stringify(described)}`);
      process.stderr.write(`${name} failed: ${error && error.stack ? error.stack : error}\n`);
    }
  }
  entry.ms = Math.round((performance.now() - started) * 10) / 10;
  entry.warnings = warnings;
  return entry.result;
}

function summarizeUserProcess(udp) {
  const json = udp.toJSON();
  return {
    class: udp.constructor.name,
    id: udp.id,
    summary: json.summary ?? null,
    description: json.description ?? null,
    parameters: json.parameters ?? null,
    returns: json.returns ?? null,
    process_graph: json.process_graph ?? null,
  };
}

const udpDefinition = {
  summary: 'x + 1',
  description: 'Adds one to a number.',
  parameters: [{ name: 'x', description: 'A number.', schema: { type: 'number' } }],
  returns: { description: 'x plus one', schema: { type: 'number' } },
  process_graph: {
    add1: { process_id: 'add', arguments: { x: { from_parameter: 'x' }, y: 1 }, result: true },
  },
};

const totalStarted = performance.now();
let con = null;

await step('connect', async () => {
  con = await OpenEO.connect(url);
  const caps = con.capabilities();
  return {
    base_url: con.getBaseUrl(),
    url: con.getUrl(),
    api_version: caps.apiVersion(),
    backend_version: caps.backendVersion(),
    title: caps.title(),
    id: caps.toJSON().id ?? null,
    features: caps.listFeatures(),
  };
});

if (root) {
  await step('connect_discovery', async () => {
    const viaRoot = await OpenEO.connect(root);
    return { base_url: viaRoot.getBaseUrl(), url: viaRoot.getUrl(), api_version: viaRoot.capabilities().apiVersion() };
  });
}

if (con === null) {
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  process.stderr.write(`client_calls.mjs: connect failed:\n${failures.join('\n')}\n`);
  process.exit(1);
}

await step('capabilities', async () => {
  const caps = con.capabilities();
  return Object.fromEntries(FEATURES.map(f => [f, caps.hasFeature(f)]));
});

await step('authenticate_wrong_password', async () => {
  const other = await OpenEO.connect(root || url);
  await other.authenticateBasic(user, `${password}-wrong`);
  return { authenticated: other.isAuthenticated() };
}, { expectError: true });

await step('authenticate', async () => {
  await con.authenticateBasic(user, password);
  const provider = con.getAuthProvider();
  const token = provider.getToken();
  return {
    authenticated: con.isAuthenticated(),
    provider_type: provider.getType(),
    display_name: provider.getDisplayName(),
    // Without the JWT conformance class the client sends `Bearer basic//<token>`.
    bearer_prefix: token === null ? null : `${token.split('/').slice(0, 2).join('/')}/`,
  };
});

await step('describe_account', async () => {
  const me = await con.describeAccount();
  return {
    user_id: me.user_id ?? null, name: me.name ?? null, budget: me.budget ?? null, default_plan: me.default_plan ?? null,
  };
});

await step('list_collections', async () => {
  const data = await con.listCollections();
  return {
    ids: data.collections.map(c => c.id),
    collections: data.collections.map(c => ({
      id: c.id,
      title: c.title ?? null,
      license: c.license ?? null,
      stac_version: c.stac_version ?? null,
      bbox: c.extent?.spatial?.bbox?.[0] ?? null,
      interval: c.extent?.temporal?.interval?.[0] ?? null,
    })),
    links_is_array: Array.isArray(data.links),
  };
});

await step('describe_collection', async () => {
  const c = await con.describeCollection(S2);
  const dims = c['cube:dimensions'] ?? {};
  const bandDim = Object.entries(dims).find(([, d]) => d.type === 'bands');
  return {
    id: c.id,
    type: c.type ?? null,
    stac_version: c.stac_version ?? null,
    description: c.description ?? null,
    dimensions: Object.fromEntries(Object.entries(dims).map(([k, d]) => [k, d.type])),
    band_dimension: bandDim ? bandDim[0] : null,
    band_values: bandDim ? bandDim[1].values : null,
    eo_bands: (c.summaries?.['eo:bands'] ?? []).map(b => ({ name: b.name, common_name: b.common_name ?? null })),
  };
});

await step('describe_collection_missing', () => con.describeCollection('NO_SUCH_COLLECTION'), { expectError: true });

await step('list_processes', async () => {
  const data = await con.listProcesses();
  const pick = id => {
    const p = data.processes.find(x => x.id === id);
    return p ? {
      summary: p.summary ?? null,
      has_description: typeof p.description === 'string' && p.description.length > 0,
      categories: p.categories ?? null,
      parameters: (p.parameters ?? []).map(x => x.name),
      has_returns_schema: Boolean(p.returns && p.returns.schema),
    } : null;
  };
  return {
    count: data.processes.length,
    ids: data.processes.map(p => p.id),
    details: Object.fromEntries(DETAILED_PROCESSES.map(id => [id, pick(id)])),
  };
});

await step('describe_process', async () => {
  const p = await con.describeProcess('ndvi');
  return p ? { id: p.id, parameters: (p.parameters ?? []).map(x => x.name) } : null;
});

// listProcesses() above reads only the first page (the client asks for limit=50); this follows `next` links.
await step('paginate_processes', async () => {
  const ids = [];
  let pages = 0;
  for await (const page of con.paginateProcesses(null, 50)) {
    pages += 1;
    ids.push(...page.map(p => p.id));
  }
  return { pages, count: ids.length, ids };
});

await step('list_file_types', async () => {
  const types = await con.listFileTypes();
  return {
    output: Object.keys(types.getOutputTypes()),
    input: Object.keys(types.getInputTypes()),
    // Lookups are case-insensitive in the client.
    lookup_gtiff: types.getOutputType('GTiff') !== null,
    lookup_netcdf: types.getOutputType('netCDF') !== null,
  };
});

await step('validate_process', async () => {
  if (!con.capabilities().hasFeature('validateProcess')) {
    return { skipped: 'POST /validation is not listed in the capabilities' };
  }
  const { process_graph, parameters } = udpDefinition;
  const errors = await con.validateProcess({ process_graph, parameters });
  return { errors: Array.from(errors).map(e => ({ code: e.code, message: e.message })) };
});

await step('set_user_process', async () => summarizeUserProcess(await con.setUserProcess(UDP_ID, udpDefinition)));

await step('list_user_processes', async () => {
  const list = await con.listUserProcesses();
  return {
    ids: list.map(p => p.id), classes: list.map(p => p.constructor.name), summaries: list.map(p => p.summary ?? null),
  };
});

await step('get_user_process', async () => summarizeUserProcess(await con.getUserProcess(UDP_ID)));

await step('replace_user_process', async () => {
  const udp = await con.getUserProcess(UDP_ID);
  await udp.replaceUserProcess({ ...udpDefinition, summary: 'x plus one' });
  return summarizeUserProcess(await con.getUserProcess(UDP_ID));
});

await step('delete_user_process', async () => {
  const udp = await con.getUserProcess(UDP_ID);
  await udp.deleteUserProcess();
  return { registry_has_process: con.processes.get(UDP_ID, 'user') !== null };
});

await step('list_user_processes_after_delete', async () => {
  const list = await con.listUserProcesses();
  return { ids: list.map(p => p.id) };
});

await step('get_user_process_after_delete', () => con.getUserProcess(UDP_ID), { expectError: true });

// --- batch job: create, start, poll, results, download without a token, logs, delete ---------------------

let job = null;

await step('create_job', async () => {
  job = await con.createJob(JOB_PROCESS, JOB_TITLE, 'created by client_calls.mjs');
  return {
    class: job.constructor.name, id: job.id, status: job.status, title: job.title ?? null,
    process_graph_nodes: Object.keys(job.process?.process_graph ?? {}),
  };
});

if (job !== null) {
  await step('list_jobs', async () => {
    const jobs = await con.listJobs();
    return { ids: jobs.map(j => j.id), classes: [...new Set(jobs.map(j => j.constructor.name))] };
  });

  await step('update_job', async () => {
    await job.updateJob({ description: 'updated by client_calls.mjs' });
    return { description: job.description ?? null, title: job.title ?? null, status: job.status };
  });

  await step('estimate_job', async () => {
    if (!con.capabilities().hasFeature('estimateJob')) {
      return { skipped: 'GET /jobs/{id}/estimate is not listed in the capabilities' };
    }
    return await job.estimateJob();
  });

  await step('start_job', async () => {
    await job.startJob(); // POST /jobs/{id}/results, then describeJob()
    return { status: job.status };
  });

  // polling as the Web Editor does, only faster: describeJob() until the job is done
  await step('poll_job', async () => {
    const statuses = [];
    const deadline = performance.now() + jobTimeoutMs;
    let polls = 0;
    for (;;) {
      await job.describeJob();
      polls += 1;
      if (statuses[statuses.length - 1] !== job.status) {
        statuses.push(job.status);
      }
      if (JOB_DONE.includes(job.status) || performance.now() > deadline) {
        break;
      }
      await sleep(250);
    }
    return {
      statuses, polls, status: job.status, progress: job.progress ?? null,
      created: job.created ?? null, updated: job.updated ?? null,
      usage_duration: (job.usage ?? job.extra?.usage)?.duration ?? null,
    };
  });

  let assets = [];
  await step('list_results', async () => {
    assets = await job.listResults(); // the assets of GET /jobs/{id}/results, through StacMigrate
    const stac = await job.getResultsAsStac();
    return {
      type: stac.type ?? null,
      stac_version: stac.stac_version ?? null,
      id: stac.id ?? null,
      assets: assets.map(a => ({
        href: a.href, type: a.type ?? null, roles: a.roles ?? null, size: a['file:size'] ?? null,
        epsg: a['proj:epsg'] ?? null, shape: a['proj:shape'] ?? null,
      })),
    };
  });

  // the browser, the Web Editor and this client download asset hrefs without an Authorization header:
  // the signed URL alone must do
  await step('download_result', async () => {
    const asset = assets.find(a => (a.roles ?? []).includes('data'));
    if (!asset) {
      throw new Error(`no asset with role 'data' among ${JSON.stringify(assets.map(a => a.href))}`);
    }
    const head = await fetch(asset.href, { method: 'HEAD' });
    const response = await fetch(asset.href);
    const bytes = new Uint8Array(await response.arrayBuffer());
    let saved = null;
    if (downloadDir && response.ok) {
      saved = join(downloadDir, 'job-result.tif');
      await writeFile(saved, bytes);
    }
    const unsigned = await fetch(asset.href.split('?')[0]);
    return {
      status: response.status,
      content_type: response.headers.get('content-type'),
      content_length: response.headers.get('content-length'),
      cors: response.headers.get('access-control-allow-origin'),
      head_status: head.status,
      head_content_length: head.headers.get('content-length'),
      bytes: bytes.length,
      magic: Array.from(bytes.slice(0, 4)),
      asset_size: asset['file:size'] ?? null,
      saved,
      unsigned_status: unsigned.status,
    };
  });

  await step('debug_job', async () => {
    const logs = job.debugJob();
    const first = await logs.nextLogs();
    const again = await logs.nextLogs(); // offset = the last id seen: nothing new once the job is done
    const errors = await job.debugJob('error').nextLogs();
    return {
      ids: first.map(e => e.id),
      levels: first.map(e => e.level),
      messages: first.map(e => e.message),
      has_times: first.every(e => typeof e.time === 'string'),
      again: again.length,
      errors: errors.map(e => e.message),
    };
  });

  await step('delete_job', async () => {
    await job.deleteJob();
    const jobs = await con.listJobs();
    return { listed: jobs.some(j => j.id === job.id) };
  });

  await step('get_job_after_delete', () => con.getJob(job.id), { expectError: true });
}

report.total_ms = Math.round(performance.now() - totalStarted);
report.failures = failures;
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
if (failures.length > 0) {
  process.stderr.write(`client_calls.mjs: ${failures.length} step(s) failed:\n${failures.join('\n')}\n`);
  process.exit(1);
}
