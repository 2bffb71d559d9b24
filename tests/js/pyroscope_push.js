// Runs the real @pyroscope/nodejs client (wall + heap profilers, unchanged) against a server:
// burns CPU in a function with a recognisable name under a wall label, allocates a little
// for the heap profiler, and stops (which flushes the last profile) after --ms.
// usage: node pyroscope_push.js SERVER_URL [--app NAME] [--ms 7000] [--flush 2000]
//        [--token T | --basic USER:PASS] [--tenant ID] [--tag k=v]... [--cpu-time]
'use strict';
const path = require('path');
const Pyroscope = require(path.join(__dirname, 'node_modules', '@pyroscope', 'nodejs'));

const argv = process.argv.slice(2);
if (!argv.length || argv[0].startsWith('--')) {
  console.error('usage: node pyroscope_push.js SERVER_URL [--app NAME] [--ms N] [--flush N] ' +
                '[--token T | --basic U:P] [--tenant ID] [--tag k=v]... [--cpu-time]');
  process.exit(2);
}
const opt = { server: argv[0], app: 'nodeapp', ms: 7000, flush: 2000, tags: {} };
for (let i = 1; i < argv.length; i++) {
  const a = argv[i];
  const next = () => argv[++i];
  if (a === '--app') opt.app = next();
  else if (a === '--ms') opt.ms = Number(next());
  else if (a === '--flush') opt.flush = Number(next());
  else if (a === '--token') opt.token = next();
  else if (a === '--basic') opt.basic = next();
  else if (a === '--tenant') opt.tenant = next();
  else if (a === '--cpu-time') opt.cpuTime = true;
  else if (a === '--tag') {
    const kv = next();
    const eq = kv.indexOf('=');
    opt.tags[kv.slice(0, eq)] = kv.slice(eq + 1);
  } else {
    console.error(`unknown argument ${a}`);
    process.exit(2);
  }
}

const config = {
  serverAddress: opt.server,
  appName: opt.app,
  flushIntervalMs: opt.flush,
  tags: opt.tags,
  wall: { collectCpuTime: !!opt.cpuTime },
};
if (opt.token) config.authToken = opt.token;
if (opt.basic) {
  const c = opt.basic.indexOf(':');
  config.basicAuthUser = opt.basic.slice(0, c);
  config.basicAuthPassword = opt.basic.slice(c + 1);
}
if (opt.tenant) config.tenantID = opt.tenant;
Pyroscope.init(config);
Pyroscope.start();

const keep = [];
// the function the tests look for in the stored profile
function aperture_pyro_burn(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) {
    for (let i = 0; i < 10000; i++) x = (x * 31 + i) % 1000003;
  }
  return x;
}
function allocate() {
  keep.push(new Array(20000).fill(keep.length));
  if (keep.length > 200) keep.splice(0, 100);
}

const deadline = Date.now() + opt.ms;
function round() {
  if (Date.now() >= deadline) {
    Pyroscope.stop().then(() => process.exit(0), (e) => {
      console.error(`stop failed: ${e}`);
      process.exit(1);
    });
    return;
  }
  Pyroscope.wrapWithLabels({ endpoint: '/burn' }, () => aperture_pyro_burn(40));
  allocate();
  setImmediate(round);
}
round();
