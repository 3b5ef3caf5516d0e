// Shared helpers of the interop tests: start the `port-linux` device, connect the real npm client
// (`@iotize/tap@2.7.0` over `@iotize/device-com-websocket.js@2.0.0`) to it, record the APDUs on the wire for
// failure messages, and assert on the client's TapResponse objects.
//
// Environment:
//   LWM2M_DEVICE_BIN       device binary (default ../target/release/port-linux relative to this folder)
//   LWM2M_SEND_TIMEOUT_MS  per-request timeout of the client (default 2000; the client's own default is 500)
//   LWM2M_INTEROP_VERBOSE  if set, echo the device's stdout/stderr and every TX/RX APDU to stderr

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const require = createRequire(import.meta.url);
const HERE = path.dirname(fileURLToPath(import.meta.url));

// Node 20 has no global WebSocket; the transport does `new WebSocket(url)` on the global object.
// `ws` delivers binary messages as Buffer (a Uint8Array), which is what the transport expects.
globalThis.WebSocket = require('ws');

// The packages ship UMD bundles whose sub-entry points are directories: load them through require().
export const { Tap } = require('@iotize/tap');
require('@iotize/tap/service/all'); // registers tap.service.{device,interface,group,bundle,variable,...}
require('@iotize/tap/auth'); // registers tap.auth and tap.encryption
export const { WebSocketProtocol } = require('@iotize/device-com-websocket.js');

export const DEVICE_BIN = process.env.LWM2M_DEVICE_BIN
  ? path.resolve(process.env.LWM2M_DEVICE_BIN)
  : path.resolve(HERE, '../target/release/port-linux');
export const READY_TIMEOUT_MS = 20_000;
export const EXIT_TIMEOUT_MS = 5_000;
export const SEND_TIMEOUT_MS = Number(process.env.LWM2M_SEND_TIMEOUT_MS || 2000);
export const VERBOSE = !!process.env.LWM2M_INTEROP_VERBOSE;
const READY_LINE = /^listening on ws:\/\/127\.0\.0\.1:(\d{1,5})$/;

export const ADMIN_ID = 0xffff;
export const ANONYMOUS_ID = 0x0000;
export const ResultCode = {
  OK: 0x00,
  BAD_REQUEST: 0x80,
  UNAUTHORIZED: 0x81,
  NOT_FOUND: 0x84,
  METHOD_NOT_ALLOWED: 0x85,
  NOT_ACCEPTABLE: 0x86,
  NOT_IMPLEMENTED: 0xa1,
  SERVICE_UNAVAILABLE: 0xa3,
  NVM_ERROR: 0xa4,
  DEVICE_UNAVAILABLE: 0xa8,
};

// ---------------------------------------------------------------------------------------------------------------
// formatting

export const hex = (bytes) => Buffer.from(bytes).toString('hex');
export const hexStatus = (s) => (typeof s === 'number' ? '0x' + s.toString(16).padStart(2, '0') : String(s));
export const statusName = (s) => {
  const name = Object.entries(ResultCode).find(([, v]) => v === s);
  return name ? `${hexStatus(s)} ${name[0]}` : hexStatus(s);
};

const METHODS = { 1: 'GET', 2: 'POST', 3: 'PUT', 4: 'DELETE' };

/** Objects without instances: instance 0xFFFF is written as `/1024//10`; elsewhere it is an id (admin 65535). */
const SINGLE_INSTANCE_OBJECTS = new Set([3, 5, 1024, 1027, 1031]);

/** "PUT /1028/1/0 body 410101" for a Tap request frame (method | object u16 | instance u16 | resource u16 | body). */
export function describeRequestFrame(frame) {
  const f = Buffer.from(frame);
  if (f.length < 7) return `frame ${hex(f)}`;
  const obj = f.readUInt16BE(1);
  const inst = f.readUInt16BE(3);
  const p = `/${obj}/${inst === 0xffff && SINGLE_INSTANCE_OBJECTS.has(obj) ? '' : inst}/${f.readUInt16BE(5)}`;
  const body = f.subarray(7);
  return `${METHODS[f[0]] ?? `method ${f[0]}`} ${p}${body.length ? ` body ${hex(body)}` : ''}`;
}

// ---------------------------------------------------------------------------------------------------------------
// wire log: the last APDUs of every connection, to show what the device answered when something fails

/** Ring buffer of the last APDUs exchanged (all connections, labelled). */
const wire = [];
export function recordApdu(label, dir, bytes) {
  const line = `${label ? label + ' ' : ''}${dir} ${hex(bytes)}`;
  wire.push(line);
  if (wire.length > 12) wire.shift();
  if (VERBOSE) process.stderr.write(`[wire] ${line}\n`);
}
export const wireLog = () => (wire.length ? `\n  last APDUs on the wire:\n    ${wire.join('\n    ')}` : '');

// ---------------------------------------------------------------------------------------------------------------
// device process

let deviceOutput = ''; // stdout + stderr of the devices started, for diagnostics

export const deviceLog = () => {
  const tail = deviceOutput.split('\n').slice(-15).join('\n    ');
  return tail.trim() ? `\n  device output (tail):\n    ${tail}` : '';
};

function waitForReadyLine(child) {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let settled = false;
    const finish = (fn, v) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn(v);
    };
    const timer = setTimeout(
      () => finish(reject, new Error(`device did not print "listening on ws://127.0.0.1:PORT" within ${READY_TIMEOUT_MS} ms${deviceLog()}`)),
      READY_TIMEOUT_MS,
    );
    child.stdout.on('data', (chunk) => {
      buffered += chunk.toString('utf8');
      let nl;
      while (!settled && (nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).replace(/\r$/, '');
        buffered = buffered.slice(nl + 1);
        const m = READY_LINE.exec(line);
        if (m) {
          const port = Number(m[1]);
          if (port > 0 && port < 65536) finish(resolve, port);
          else finish(reject, new Error(`device printed an invalid port: ${JSON.stringify(line)}`));
        } else {
          finish(reject, new Error(`first stdout line of the device is not the ready line: ${JSON.stringify(line)}${deviceLog()}`));
        }
      }
    });
    child.once('exit', (code, signal) =>
      finish(reject, new Error(`device exited before it was ready (code ${code}, signal ${signal})${deviceLog()}`)),
    );
    child.once('error', (err) => finish(reject, new Error(`cannot start the device ${DEVICE_BIN}: ${err.message}`)));
  });
}

/**
 * The arguments that keep `port-linux` empty: it starts with its demo configuration (bundle 1 "demo" and its
 * variables) unless told `--no-demo`, and a test that configures the device itself, or counts on a fresh one
 * (no bundle, no variable, factory values), must not find the demo there. Nothing is added when the caller asked
 * for the demo, named a demo flag itself, or runs something else than a device: a prefix (`xtask qemu BOARD`)
 * starts a board, which has no demo, and `--bridge-serial` forwards to one.
 */
export function demoArgs(extraArgs, { demo = false, prefix = [] } = {}) {
  if (demo || prefix.length) return [];
  if (extraArgs.some((a) => /^--(no-)?demo(=|$)/.test(a) || a === '--bridge-serial')) return [];
  return ['--no-demo'];
}

/**
 * Start `port-linux --ws 127.0.0.1:0 --no-demo [extraArgs]` (or `bin [prefix...] --ws 127.0.0.1:0 [extraArgs]`,
 * such as `xtask qemu BOARD`), wait for its ready line. `demo: true` starts the device with its demo configuration
 * (see demoArgs).
 * Returns { child, port, args, exited: Promise<{code, signal}>, stop() }.
 */
export async function startDevice(extraArgs = [], { bin = DEVICE_BIN, prefix = [], demo = false } = {}) {
  if (!existsSync(bin)) {
    throw new Error(
      `device binary not found: ${bin}\n` +
        `  build it first (cargo build --release -p port-linux) or point LWM2M_DEVICE_BIN at it`,
    );
  }
  const args = [...prefix, '--ws', '127.0.0.1:0', ...demoArgs(extraArgs, { demo, prefix }), ...extraArgs];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  for (const stream of [child.stdout, child.stderr]) {
    stream.on('data', (chunk) => {
      deviceOutput += chunk.toString('utf8');
      if (deviceOutput.length > 64_000) deviceOutput = deviceOutput.slice(-32_000);
      if (VERBOSE) process.stderr.write(`[device] ${chunk}`);
    });
  }
  let port;
  try {
    port = await waitForReadyLine(child);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw err;
  }
  return {
    child,
    port,
    args,
    exited,
    /** SIGINT, then require exit code 0 within EXIT_TIMEOUT_MS (SIGKILL and fail otherwise). */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      let timer;
      const result = await Promise.race([
        exited,
        new Promise((resolve) => (timer = setTimeout(() => resolve(null), EXIT_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
      if (result === null) {
        child.kill('SIGKILL');
        await exited;
        assert.fail(`device did not exit within ${EXIT_TIMEOUT_MS} ms of SIGINT (killed with SIGKILL)${deviceLog()}`);
      }
      assert.deepEqual(
        result,
        { code: 0, signal: null },
        `device must exit with code 0 on SIGINT, got code ${result.code} signal ${result.signal}${deviceLog()}`,
      );
      return result;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// client connection

/**
 * Connect a fresh client (`Tap.fromProtocol(new WebSocketProtocol(...))`) to the device.
 * The transport is only observed, never altered: TX/RX APDUs go to the wire log (labelled `label`), and
 * `counts` holds {tx, rx, textFrames}; `frames` keeps every request frame sent (for reports).
 * Returns { tap, protocol, counts, frames, close() }; close() disconnects and waits for the socket to close.
 */
export async function connectTap(port, { label = '' } = {}) {
  const protocol = new WebSocketProtocol({ url: `ws://127.0.0.1:${port}` });
  protocol.options.send.timeout = SEND_TIMEOUT_MS;
  const counts = { tx: 0, rx: 0, textFrames: 0 };
  const frames = [];
  const write = protocol.write.bind(protocol);
  protocol.write = (data) => {
    counts.tx++;
    recordApdu(label, 'TX', data);
    // APDU = CLA INS P1 P2 Lc | Tap request frame
    frames.push(Buffer.from(data).subarray(5));
    return write(data);
  };
  const notify = protocol.notifyNewMessage.bind(protocol);
  protocol.notifyNewMessage = (message) => {
    counts.rx++;
    recordApdu(label, 'RX', message);
    return notify(message);
  };
  const tap = Tap.fromProtocol(protocol);
  try {
    await tap.connect();
  } catch (err) {
    throw new Error(`client ${label} could not connect to ws://127.0.0.1:${port}: ${err.message}${deviceLog()}`);
  }
  // The transport silently converts text frames to bytes; the device must answer with binary frames only.
  protocol.ws.addEventListener('message', (event) => {
    if (typeof event.data === 'string') counts.textFrames++;
  });
  const closed = new Promise((resolve) => protocol.ws.addEventListener('close', () => resolve()));
  return {
    tap,
    protocol,
    counts,
    frames,
    closed,
    async close() {
      try {
        await tap.disconnect();
      } catch {
        // the device may already be gone
      }
      let timer;
      await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, 2000)))]);
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// assertions on client calls

/** Run a client call; turn transport/decoding failures into an assertion error that shows the wire. */
export async function call(what, fn) {
  try {
    return await fn();
  } catch (err) {
    const cause = err && err.cause ? `\n  cause: ${err.cause.message || err.cause}` : '';
    assert.fail(`${what}: the client call threw ${err && (err.code || err.name)}: ${err && err.message}${cause}${wireLog()}`);
  }
}

/** Assert a TapResponse has the given status and return it. */
export function expectStatus(what, response, expected) {
  assert.ok(response, `${what}: no response object`);
  assert.equal(
    response.status,
    expected,
    `${what}: expected status ${statusName(expected)}, device answered ${statusName(response.status)}` +
      ` (raw body 0x${hex(response.rawBody())})${wireLog()}`,
  );
  return response;
}

/** Assert success (status 0x00) and return the decoded body. */
export function expectOkBody(what, response) {
  expectStatus(what, response, ResultCode.OK);
  try {
    return response.body();
  } catch (err) {
    assert.fail(`${what}: status OK but the client could not decode the body 0x${hex(response.rawBody())}: ${err.message}${wireLog()}`);
  }
}

export function assertPrintableAscii(what, value) {
  assert.equal(typeof value, 'string', `${what}: expected a string, got ${typeof value}${wireLog()}`);
  assert.ok(value.length > 0, `${what}: empty string${wireLog()}`);
  assert.match(value, /^[\x20-\x7e]+$/, `${what}: not printable ASCII: ${JSON.stringify(value)} (0x${Buffer.from(value, 'latin1').toString('hex')})${wireLog()}`);
}

/** The TapResponse carried by an error thrown by the client (TapResponseStatusError, or a TapAuthError wrapping one). */
export function responseOfError(err) {
  for (let e = err, depth = 0; e && depth < 5; e = e.cause, depth++) {
    if (e.response && typeof e.response.status === 'number') return e.response;
  }
  return undefined;
}
export const statusOfError = (err) => responseOfError(err)?.status;

/**
 * "POST /1024/65535/0"-like text for the request of a TapResponse (the client keeps the request frame it sent).
 * The instance is always printed: 65535 is both "no instance" (/1024//0) and the admin group (/1025/65535/4).
 */
export function requestOfResponse(response) {
  const h = response?.request?.header;
  if (!h) return '?';
  const method = METHODS[h.methodType] ?? `method ${h.methodType}`;
  return `${method} /${h.path.objectId}/${h.path.objectInstanceId}/${h.path.resourceId}`;
}

/** tap.auth.login(); on failure, an assertion error naming the failing request and its status. */
export async function login(tap, username, password) {
  try {
    await tap.auth.login({ username, password });
  } catch (err) {
    // The client reports a failure of its post-login session refresh (GET /1024//7, GET /1025/{gid}/4)
    // as a login failure too; the cause names the request that failed.
    assert.fail(
      `tap.auth.login(${username}/${password}) failed: ${err.code}: ${err.message}` +
        `${err.cause ? '\n  cause: ' + err.cause.message : ''}` +
        `\n  failing request: ${requestOfResponse(responseOfError(err))}, status ${hexStatus(statusOfError(err))}${wireLog()}`,
    );
  }
}

/** tap.auth.logout(); on failure, an assertion error with the status. */
export async function logout(tap) {
  try {
    await tap.auth.logout();
  } catch (err) {
    assert.fail(`tap.auth.logout() failed: ${err.code}: ${err.message} (status ${hexStatus(statusOfError(err))})${wireLog()}`);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
