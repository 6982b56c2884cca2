// send_hotshots.js - drives the real hot-shots DogStatsD client for
// tests/integration/test_clients.py. Usage:
//   node send_hotshots.js udp PORT        DogStatsD over UDP to 127.0.0.1:PORT
//   node send_hotshots.js uds PATH        DogStatsD over the Unix socket PATH
// Sends a fixed set (tags, counter, gauge, histogram, distribution, set,
// timing, event, service check), closes the client and prints "sent N".
// Exit 3 with "SKIP: reason" when the UDS transport (native unix-dgram) is
// unavailable; exit 1 on any client error.
'use strict';
const StatsD = require('hot-shots');

const [mode, target] = process.argv.slice(2);
const opts = { prefix: 'hs.', globalTags: { app: 'node' }, errorHandler: (e) => fail(e) };
if (mode === 'udp') {
  Object.assign(opts, { host: '127.0.0.1', port: Number(target), protocol: 'udp', maxBufferSize: 0 });
} else if (mode === 'uds') {
  try {
    require('unix-dgram');
  } catch (e) {
    console.log('SKIP: hot-shots uds needs the native unix-dgram module: ' + e.message);
    process.exit(3);
  }
  // buffered (hot-shots' uds default, 8192 bytes): one datagram, not 19 against
  // the kernel's 10-datagram unix queue
  Object.assign(opts, { protocol: 'uds', path: target, maxBufferSize: 8192, bufferFlushInterval: 50 });
} else {
  console.error('usage: node send_hotshots.js udp PORT | uds PATH');
  process.exit(64);
}

function fail(e) {
  console.error('hot-shots error: ' + (e && e.stack ? e.stack : e));
  process.exit(1);
}

const c = new StatsD(opts);
const t = mode;
let n = 0;
const done = () => { n++; };
c.increment('requests', 3, { route: '/api', transport: t }, done);
c.increment('requests', 2, { route: '/api', transport: t }, done);
c.gauge('queue_depth', 17.5, [`transport:${t}`], done);
for (const v of [10, 20, 30, 40, 50]) c.histogram('latency', v, [`transport:${t}`], done);
for (const v of [1, 2, 3, 4]) c.distribution('payload', v, [`transport:${t}`], done);
for (const u of ['alice', 'bob', 'alice', 'carol']) c.set('users', u, [`transport:${t}`], done);
c.timing('render', 42, [`transport:${t}`], done);
c.event('deploy ' + t, 'version 1.2.3 rolled out', { alert_type: 'success', priority: 'low' },
  [`transport:${t}`], done);
c.check('service.up', c.CHECKS.WARNING, { message: 'degraded ' + t }, [`transport:${t}`], done);
setTimeout(() => {
  c.close((err) => {
    if (err) fail(err);
    console.log('sent ' + n);
  });
}, 200);
