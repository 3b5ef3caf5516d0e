// Coverage of the real client's service calls (`tap.service.<service>.<method>` of `@iotize/tap` 2.7.0): how
// many the `port-linux` device answers the way the client expects. A module: `runCoverage()` runs it and returns
// the results and the report, which coverage.test.mjs asserts on; run directly, it prints the report (and
// exits 0 once it has printed it, whatever the figures: `node --test` does not pick this file up).
//
//   cd interop && LWM2M_DEVICE_BIN=../target/release/port-linux node coverage.mjs
//
// 1. Every service call is enumerated from the client itself: the services registered on `tap.service` (plus
//    `gpio`, registered by `@iotize/tap/service/impl/gpio`), and for each the entries of its `resources` table
//    (the SERVICE_CALLS table its `<method>Call()` builders copy: method, path template with `{param}`s,
//    body encoder, response decoder). The list is cross-checked against `objects.json` of the spec.
// 2. Each call is classified safe or not (table UNSAFE below, then generic rules: creates, execute-like POSTs
//    without a body, writes without a read of the same value, GETs carrying a request body). Safe calls are
//    reads (GET, with the admin profile 65535, the bundles/variables that exist, each special feature 100..105)
//    and, for every write (PUT, or a POST that writes a value) with a read of the same value, a round trip:
//    read, write back what was read, read again, and the two reads must be equal.
// 3. One connection, logged in as admin/admin (plain login); reads first, then the round trips. A call that
//    times out (2 s) or makes the connection drop is marked, and the connection is reopened (and logged in).
//    A call of the DOCUMENTED_REFUSALS table must be refused with exactly its status (at whichever step of a
//    round trip refuses): it then counts as answered as the client expects; any other answer, a success
//    included, means the table is out of date.
// 4. The report: totals, percentage of safe calls answered as expected, every call not covered with its
//    reason, the documented refusals, the calls skipped as unsafe, and the client quirks seen (an encoder
//    writing other bytes than the matching decoder read).
//
// The device starts with its demo configuration (bundle 1 "demo" and its variables), which gives the bundle and
// variable calls instances to run on; `fixture` starts it empty (`--no-demo`) and creates a bundle and a
// variable with the client's configurator instead.
//
// Environment of the report (besides harness.mjs's LWM2M_DEVICE_BIN, LWM2M_SEND_TIMEOUT_MS, LWM2M_INTEROP_VERBOSE):
//   LWM2M_SPEC_DIR          directory of objects.json (default ../../shared/spec relative to this folder)
//   LWM2M_COVERAGE_FORCE    comma-separated calls (service.method, no body) run anyway as plain calls, last:
//                           to see how the report handles a drop or a session change (device.reboot, interface.logout)
//   LWM2M_COVERAGE_FIXTURE  if set, start the device empty (--no-demo) and first create bundle 1 with variable 1
//                           through the client's configurator
//   LWM2M_COVERAGE_NO_DEMO  if set, start the device empty (--no-demo), without a fixture: no bundle, no variable

import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import {
  ADMIN_ID,
  DEVICE_BIN,
  SEND_TIMEOUT_MS,
  VERBOSE,
  connectTap,
  hex,
  login,
  require,
  responseOfError,
  startDevice,
} from './harness.mjs';

require('@iotize/tap/service/impl/gpio'); // registers tap.service.gpio (not part of service/all)
const { ServiceCallRunner, SpecialFeature } = require('@iotize/tap');
const { TapRequestFrame, ResultCode } = require('@iotize/tap/client/api');
const { CRC } = require('@iotize/tap/client/impl');
const { MultiRequestFrame } = require('@iotize/tap/service/impl/interface');
const { VariableType } = require('@iotize/tap/service/impl/variable');

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SPEC_DIR = path.resolve(process.env.LWM2M_SPEC_DIR || path.resolve(HERE, '../../shared/spec'));
/** Our own guard above the client's per-request timeout (SEND_TIMEOUT_MS, 2 s by default). */
const GUARD_MS = SEND_TIMEOUT_MS + 1000;

/** The client's ResultCode enum has no reverse mapping: build it. */
const RESULT_NAME = Object.fromEntries(Object.entries(ResultCode).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k]));
const statusText = (s) =>
  typeof s === 'number' ? `0x${s.toString(16).padStart(2, '0')} ${RESULT_NAME[s] ?? 'unknown status'}` : String(s);
const METHOD = (code) => TapRequestFrame.MethodType[code] ?? `method ${code}`;
const ABSENT = new Set([ResultCode.NOT_FOUND, ResultCode.NOT_IMPLEMENTED]);

// ---------------------------------------------------------------------------------------------------------------
// documented refusals

const DATA_LOG_ABSENT = 'object 1031 (data log) is not in this release';

/**
 * Safe calls the device refuses on purpose, each with the exact status it must answer and why. Such a call counts
 * as answered as the client expects; answered any other way (another status, or a success) it is a failure: the
 * refusal no longer holds and the table is out of date, so an entry cannot hide a call that now misbehaves. For a
 * round trip the status is that of the step that refused (dataLog.putOptions is refused at its read,
 * dataLog.getOptions).
 */
export const DOCUMENTED_REFUSALS = {
  'interface.putCurrentHostProtocol': {
    status: ResultCode.NOT_IMPLEMENTED,
    reason: 'the current host protocol is the link the request came on',
  },
  'ble.getAddress': { status: ResultCode.NOT_IMPLEMENTED, reason: 'the desktop device has no BLE radio' },
  'dataLog.isRunning': { status: ResultCode.NOT_FOUND, reason: DATA_LOG_ABSENT },
  'dataLog.getOptions': { status: ResultCode.NOT_FOUND, reason: DATA_LOG_ABSENT },
  'dataLog.putOptions': { status: ResultCode.NOT_FOUND, reason: DATA_LOG_ABSENT },
  'dataLog.getPacketCount': { status: ResultCode.NOT_FOUND, reason: DATA_LOG_ABSENT },
  'target.readDebug': {
    status: ResultCode.NOT_IMPLEMENTED,
    reason: 'debug/register access of an SWD probe: the simulated target has none',
  },
  'target.getRegisterAccess': {
    status: ResultCode.NOT_IMPLEMENTED,
    reason: 'debug/register access of an SWD probe: the simulated target has none',
  },
  'target.readBytes': {
    status: ResultCode.TARGET_PROTOCOL_NOT_IMPLEMENTED,
    reason: 'raw serial line: the target protocol is SWD (simulated memory), not SERIAL',
  },
  'target.getReceivedCount': {
    status: ResultCode.TARGET_PROTOCOL_NOT_IMPLEMENTED,
    reason: 'raw serial line: the target protocol is SWD (simulated memory), not SERIAL',
  },
  'target.modbusRead': {
    status: ResultCode.TARGET_PROTOCOL_NOT_IMPLEMENTED,
    reason: 'the target protocol is SWD, not MODBUS',
  },
  'tapnpass.getStatus': { status: ResultCode.NOT_IMPLEMENTED, reason: 'no TapNPass adapter on this port' },
  'tapnpass.getControlIn': { status: ResultCode.NOT_IMPLEMENTED, reason: 'no TapNPass adapter on this port' },
  'tapnpass.getControlOut': { status: ResultCode.NOT_IMPLEMENTED, reason: 'no TapNPass adapter on this port' },
};

// ---------------------------------------------------------------------------------------------------------------
// 1. enumerate the client's service calls

/** Parameter names of a service method, from its source (the UMD bundle keeps them, with comments around). */
function paramNames(fn) {
  const src = fn.toString().replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  const m = /^[^(]*\(([^)]*)\)/.exec(src);
  return m ? m[1].split(',').map((p) => p.replace(/=[\s\S]*$/, '').trim()).filter(Boolean) : [];
}

/** "/1024//{featureId}" -> { object: 1024, instance: null, resource: '{featureId}' } */
function splitPath(template) {
  const [, o, i, r] = template.split('/');
  const num = (x) => (/^\d+$/.test(x) ? Number(x) : x || null);
  return { object: num(o), instance: num(i), resource: num(r) };
}

function enumerateCalls(tap) {
  const proto = Object.getPrototypeOf(tap.service);
  const names = Object.getOwnPropertyNames(proto).filter(
    (n) => n !== 'constructor' && !n.startsWith('__') && Object.getOwnPropertyDescriptor(proto, n).get,
  );
  const calls = [];
  const helpers = []; // prototype methods that are not service calls (no entry in the resources table)
  const notes = []; // oddities of the enumeration
  for (const service of names) {
    const s = tap.service[service];
    if (!s || typeof s !== 'object' || !s.resources || typeof s.resources !== 'object') continue;
    const sproto = Object.getPrototypeOf(s);
    for (const m of Object.getOwnPropertyNames(sproto)) {
      if (m === 'constructor' || m.endsWith('Call') || typeof sproto[m] !== 'function') continue;
      if (!(m in s.resources)) helpers.push(`${service}.${m}`);
    }
    for (const [method, def] of Object.entries(s.resources)) {
      if (typeof s[method] !== 'function' || typeof s[`${method}Call`] !== 'function') {
        notes.push(`${service}.${method}: resources entry without a method or builder (not counted)`);
        continue;
      }
      // Parameter names of the builder (`<method>Call`), which fills `pathParameters` from them: some methods are
      // overridden by hand-written ones with other names (variable.getMeta(id), putMeta(id, data)), same positions.
      const params = paramNames(s[`${method}Call`]);
      if (params.length !== paramNames(s[method]).length) notes.push(`${service}.${method}: method and builder differ in arity`);
      const pathParams = [...def.path.matchAll(/\{(\w+)\}/g)].map((x) => x[1]);
      calls.push({
        service,
        method,
        key: `${service}.${method}`,
        def,
        httpMethod: METHOD(def.method),
        template: def.path,
        ...splitPath(def.path),
        params,
        pathParams,
        bodyParams: params.filter((p) => !pathParams.includes(p)),
      });
    }
  }
  return { calls, helpers, notes };
}

const camel = (s) => s.replace(/-(\w)/g, (_, c) => c.toUpperCase());

/** Compare with objects.json: same (service, method) set, HTTP method, path template and body parameter. */
function crossCheck(calls) {
  const file = path.join(SPEC_DIR, 'objects.json');
  if (!existsSync(file)) return { available: false, file, lines: [`objects.json not found at ${file}: not cross-checked`] };
  const spec = JSON.parse(readFileSync(file, 'utf8'));
  const byKey = new Map();
  const featureIds = new Set();
  for (const entry of spec) {
    if (entry.resource_template === '{featureId}') featureIds.add(entry.resource);
    for (const c of entry.calls) {
      const key = `${camel(c.library_service)}.${c.library_method}`;
      if (!byKey.has(key)) byKey.set(key, c);
    }
  }
  const lines = [];
  const ours = new Set(calls.map((c) => c.key));
  for (const c of calls) {
    const s = byKey.get(c.key);
    if (!s) {
      lines.push(`${c.key}: not in objects.json`);
      continue;
    }
    c.spec = s;
    if (s.method !== c.httpMethod) lines.push(`${c.key}: method ${c.httpMethod}, objects.json ${s.method}`);
    if (s.path !== c.template) lines.push(`${c.key}: path ${c.template}, objects.json ${s.path}`);
    const sb = s.body_param ?? null;
    const ob = c.bodyParams.length ? c.bodyParams.join(',') : null;
    if (sb !== ob) lines.push(`${c.key}: body parameter ${ob}, objects.json ${sb}`);
  }
  for (const key of byKey.keys()) if (!ours.has(key)) lines.push(`${key}: in objects.json, not found in the client`);
  return { available: true, file, specCount: byKey.size, featureIds: [...featureIds].sort((a, b) => a - b), lines };
}

// ---------------------------------------------------------------------------------------------------------------
// 2. classify

const UNSAFE = {
  'device.reboot': 'reboot (ends the connection)',
  'device.factoryReset': 'factory reset',
  'device.putCurrentTime': 'sets the device clock; its read (GET /3//13, ASCII) is not the shape it writes (u32)',
  'interface.login': 'login: changes the session',
  'interface.loginWithHash': 'login: changes the session',
  'interface.loginWithUID': 'login: changes the session',
  'interface.logout': 'logout: changes the session',
  'interface.putCertificatePublicKey': 'append of a large blob (certificate, no read)',
  'interface.putCertificatePrivateKey': 'append of a large blob (certificate, no read)',
  'mqtt.putBrokerCertificate': 'append of a large blob (certificate, no read)',
  'jvm.appendCode': 'append of a large blob (JVM code, no read)',
  'group.changePassword': 'password change',
  'group.changePasswordKey': 'password change',
  'firmware.postPackage': 'firmware update',
  'firmware.postUpdate': 'firmware update',
  'scram.login': 'SCRAM login: changes the session',
  'scram.loginProof': 'SCRAM login: changes the session',
  'scram.initialize': 'starts the encrypted session',
  'scram.setInitializationVector': 'changes the session IV',
  'scram.send': 'encrypted tunnel: needs an encrypted session',
  'scram.sendWithIV': 'encrypted tunnel: needs an encrypted session',
  'singlePacket.writeAndExecute': 'single packet: executes a command',
  'singlePacket.writeAndExecuteBytes': 'single packet: executes a command',
  'singlePacket.writeChunk': 'single packet: loads a chunk into the store',
  'singlePacket.executeSinglePacketInStore': 'single packet: executes the stored packet',
  'dataLog.dequeueOnePacket': 'dequeues (consumes) a data-log packet',
  'target.sendReceive': 'sends bytes to the target (GET with a payload)',
  'target.send': 'sends bytes to the target',
  'target.writeAddress': 'writes target memory',
  'target.modbusWrite': 'writes a Modbus register of the target',
  'tapnpass.postAction': 'TapNPass adapter action (execute)',
  'tapnpass.setControlIn': 'control command to the TapNPass adapter',
  'tapnpass.setAdpControlOut': 'control command to the TapNPass adapter',
};

/**
 * Explicit arguments of the calls that carry a request body and are still reads (GETs, and the CRC check, a POST
 * that writes nothing). READ_ARGS[key](tap, run).
 */
const READ_ARGS = {
  // port-linux describes its own executable as the running image, at address 0 (`/5//6` answers its CRC).
  'firmware.postCrcCheck': (tap, run) => {
    const image = readFileSync(run.bin);
    // the client's own CRC-32/MPEG-2 (`objects.md` §7.1)
    return [{ address: 0, size: image.length, crc: CRC.mpeg2().compute(image) >>> 0 }];
  },
  'target.readDebug': () => [0x20000000],
  'target.readAddress': () => [{ address: 0x20000000, length: 4, format: 3 }],
  'target.modbusRead': () => [{ objectType: 3, slave: 1, address: 0, length: 1, format: 2 }],
  'interface.executeMultiRequestFrame': (tap) => {
    const request = ServiceCallRunner.toTapRequest(tap.service.device.getSerialNumberCall());
    return [
      {
        requests: [
          {
            expectedResponseStatus: MultiRequestFrame.ExpectedResponseStatus.ANYTHING,
            request,
            requestLen: request.payload.length + 7,
          },
        ],
      },
    ];
  },
};

const converterText = (c) => {
  if (!c) return 'raw bytes';
  const name = c.constructor?.name ?? typeof c;
  const o = c.options || {};
  const width = o.sizeOf ? `${o.sizeOf}-bit ` : '';
  return `${width}${name}`;
};

/** The read that returns the value a write writes: same name (put/set/post<X> -> get/is<X>), else same path and same converter. */
function findReadPartner(call, calls) {
  const base = call.method.replace(/^(put|set|post)/, '');
  if (base !== call.method) {
    for (const prefix of ['get', 'is']) {
      const p = calls.find((c) => c.service === call.service && c.method === prefix + base && c.httpMethod === 'GET');
      if (p && p.pathParams.every((x) => call.pathParams.includes(x))) return p;
    }
  }
  return calls.find(
    (c) => c.httpMethod === 'GET' && c.template === call.template && c.bodyParams.length === 0 &&
      c.def.responseBodyDecoder && c.def.responseBodyDecoder === call.def.bodyEncoder,
  );
}

/** `force`: calls to run anyway, as plain calls (LWM2M_COVERAGE_FORCE=device.reboot to see a drop). */
function classify(call, calls, force) {
  if (force.has(call.key) && (call.bodyParams.length === 0 || READ_ARGS[call.key])) return { safe: true, kind: 'read', forced: true };
  if (UNSAFE[call.key]) return { safe: false, reason: UNSAFE[call.key] };
  if (call.resource === 65535) return { safe: false, reason: 'creates an instance' };
  if (call.httpMethod === 'GET') {
    if (call.bodyParams.length && !READ_ARGS[call.key]) return { safe: false, reason: 'GET with a request body: not a plain read' };
    return { safe: true, kind: 'read' };
  }
  if (call.httpMethod === 'POST' && READ_ARGS[call.key]) return { safe: true, kind: 'read' };
  if (!['PUT', 'POST'].includes(call.httpMethod)) return { safe: false, reason: `${call.httpMethod}: not a read nor a write-back` };
  if (call.bodyParams.length === 0) return { safe: false, reason: `execute-like ${call.httpMethod} (no body)` };
  if (call.bodyParams.length > 1) return { safe: false, reason: 'write of several values: no single read to write back' };
  const partner = findReadPartner(call, calls);
  if (!partner) return { safe: false, reason: 'write-only: no read of the same value to write back' };
  return { safe: true, kind: 'roundtrip', partner };
}

// ---------------------------------------------------------------------------------------------------------------
// 3. run

/** Outcome category of a read (or of one step of a round trip). */
function categoryOf(o) {
  if (o.dropped) return 'dropped';
  if (o.sessionLost) return 'session';
  if (o.timeout) return 'timeout';
  if (o.error) return 'client';
  if (o.status === ResultCode.NVM_FULL) return 'nvmFull';
  if (ABSENT.has(o.status)) return 'absent';
  if ((o.status & 0x80) !== 0) return 'other';
  if (!o.decoded) return 'decoder';
  return 'expected';
}
function reasonOf(o) {
  if (o.sessionLost) return `${o.status !== undefined ? statusText(o.status) : o.error}, and the admin session was lost`;
  if (o.dropped) return `connection dropped${o.status !== undefined ? ` (status ${statusText(o.status)})` : ''}`;
  if (o.timeout) return `timeout: ${o.error}`;
  if (o.error) return `client error: ${o.error}`;
  if ((o.status & 0x80) !== 0) return statusText(o.status);
  if (!o.decoded) return `decoder rejected 0x${hex(o.raw)}: ${o.decodeError}`;
  return 'ok';
}

/** The categories that give no answer to judge: a documented refusal cannot be checked on them either. */
const UNANSWERED = new Set(['timeout', 'dropped', 'session', 'client']);
/** Answers the client does not expect: a documented refusal that no longer holds, or undocumented failures. */
const WRONG = new Set(['stale', 'mismatch', 'decoder', 'other', 'nvmFull']);

/**
 * A variant of a documented call: refused with exactly the table's status (by the step that refused), it is a
 * documented refusal; a success or another status means the table no longer says what the device does.
 */
function judgeDocumented(doc, r) {
  if (UNANSWERED.has(r.category)) return r;
  const at = r.step ? ` at ${r.step}` : '';
  if (r.category !== 'expected' && r.status === doc.status) {
    return { ...r, category: 'documented', reason: `${statusText(doc.status)}${at}: ${doc.reason}` };
  }
  const got = r.category === 'expected' ? 'answered as the client expects' : `answered ${r.reason}`;
  return {
    ...r,
    category: 'stale',
    reason: `documented refusal no longer holds (table out of date): the table says ${statusText(doc.status)} (${doc.reason}), the device ${got}`,
    root: 'documented refusal no longer holds',
  };
}

/** The path-parameter combinations a call runs with. */
function variantsOf(call, ids) {
  let combos = [{}];
  for (const p of call.pathParams) {
    const values = ids[p];
    if (!values) throw new Error(`${call.key}: no value for path parameter {${p}}`);
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [p]: v })));
  }
  return combos;
}
/** The 7-byte header the call must send for these path parameters (from its resources entry). */
function expectedHeader(call, combo) {
  const { object, instance, resource } = splitPath(ServiceCallRunner.resolvePathParameters({ path: call.template, pathParameters: combo }));
  const h = Buffer.alloc(7);
  h[0] = call.def.method;
  h.writeUInt16BE(object, 1);
  h.writeUInt16BE(instance ?? 0xffff, 3);
  h.writeUInt16BE(resource, 5);
  return h;
}
const argsFor = (call, combo, body) => call.params.map((p) => (p in combo ? combo[p] : body.shift()));
const comboText = (combo) => Object.entries(combo).map(([k, v]) => `${k}=${v}`).join(',');

const isTimeout = (err) => /timeout/i.test(`${err?.message} ${err?.cause?.message ?? ''} ${err?.code ?? ''}`);

const short = (v) => {
  if (v instanceof Uint8Array) return `0x${hex(v)}`;
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'object' && v !== null) return JSON.stringify(v, (k, x) => (x instanceof Uint8Array ? `0x${hex(x)}` : x));
  return String(v);
};

const equalValues = (a, b) => {
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  return isDeepStrictEqual(a, b);
};

/**
 * One run: the device, its single connection (one interlocutor: reopened after a drop or a timeout), and what was
 * seen on the way.
 */
class Run {
  constructor({ deviceArgs, demo, bin }) {
    this.deviceArgs = deviceArgs;
    this.demo = demo;
    this.bin = bin;
    this.stateDir = undefined;
    this.device = undefined;
    this.conn = undefined;
    this.events = []; // reconnections, device restarts
    this.reconnects = 0;
    this.pathChecks = { checked: 0, mismatches: [] };
    this.quirks = new Map(); // key -> text
  }

  async startDevice() {
    this.device = await startDevice(['--state', this.stateDir, ...this.deviceArgs], { demo: this.demo, bin: this.bin });
  }

  async openConnection(label) {
    this.conn = await connectTap(this.device.port, { label });
    const c = this.conn;
    c.isClosed = false;
    c.closed.then(() => (c.isClosed = true));
    await login(c.tap, 'admin', 'admin');
  }

  async reopen(why) {
    this.reconnects++;
    this.events.push(why);
    try {
      await this.conn.close();
    } catch {
      // already gone
    }
    const child = this.device.child;
    if (child.exitCode !== null || child.signalCode !== null) {
      this.events.push(`device exited (code ${child.exitCode}, signal ${child.signalCode}): restarted on the same --state`);
      await this.startDevice();
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await this.openConnection(`R${this.reconnects}`);
        return;
      } catch (err) {
        if (attempt >= 5) throw new Error(`cannot reconnect after "${why}": ${err.message}`);
        this.events.push(`  reconnection attempt ${attempt} failed: ${err.message.split('\n')[0]}`);
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  }

  /**
   * Run one service call through the client's own method. Returns an outcome:
   * { status, value, raw, decodeError, error, timeout, dropped }.
   */
  async invoke(call, args, { checkSession = false } = {}) {
    const s = this.conn.tap.service[call.service];
    let timer;
    const out = {};
    const frames = this.conn.frames;
    const sentBefore = frames.length;
    try {
      const response = await Promise.race([
        s[call.method](...args),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${GUARD_MS} ms (guard timeout)`)), GUARD_MS))),
      ]);
      out.status = response.status;
      out.raw = response.rawBody();
      if (response.isSuccessful()) {
        try {
          out.value = response.body();
          out.decoded = true;
        } catch (err) {
          out.decodeError = err?.message || String(err);
        }
      }
    } catch (err) {
      const r = responseOfError(err);
      if (r) {
        out.status = r.status;
        out.raw = r.rawBody();
      } else if (isTimeout(err)) {
        out.timeout = true;
        out.error = err.message;
      } else {
        out.error = `${err?.code ?? err?.name}: ${err?.message}${err?.cause ? ` (cause: ${err.cause.message ?? err.cause})` : ''}`;
      }
    } finally {
      clearTimeout(timer);
    }
    out.sent = frames.slice(sentBefore);
    // let a close that the request caused arrive before deciding
    await new Promise((r) => setTimeout(r, 0));
    if (!this.conn.isClosed && (checkSession || out.status === ResultCode.UNAUTHORIZED) && call.key !== 'interface.getCurrentGroupId') {
      // did the call end the admin session? (then log in again, and say so)
      const g = await this.invoke({ service: 'interface', method: 'getCurrentGroupId', key: 'interface.getCurrentGroupId' }, []);
      if (g.dropped) out.dropped = true;
      else if (g.value !== ADMIN_ID) {
        out.sessionLost = true;
        this.events.push(`${call.key}: the admin session was lost (current group ${g.value ?? reasonOf(g)}): logged in again`);
        await login(this.conn.tap, 'admin', 'admin');
      }
    }
    if (this.conn.isClosed || this.device.child.exitCode !== null) {
      out.dropped = true;
      await this.reopen(`${call.key}(${args.map(short).join(', ')}): connection dropped`);
    } else if (out.timeout) {
      await this.reopen(`${call.key}(${args.map(short).join(', ')}): timeout, reconnected`);
    }
    return out;
  }

  /** The request the service method really sent (first frame) must be the one its resources entry describes. */
  checkSentPath(call, combo, o) {
    if (!o.sent?.length) return;
    this.pathChecks.checked++;
    const want = expectedHeader(call, combo);
    const got = Buffer.from(o.sent[0]).subarray(0, 7);
    if (!got.equals(want)) this.pathChecks.mismatches.push(`${call.key}: sent ${hex(got)}, its resources entry says ${hex(want)}`);
  }

  async runRead(call, combo) {
    const extra = READ_ARGS[call.key] ? READ_ARGS[call.key](this.conn.tap, this) : [];
    const o = await this.invoke(call, argsFor(call, combo, [...extra]), { checkSession: !!call.forced });
    this.checkSentPath(call, combo, o);
    return {
      category: categoryOf(o),
      reason: reasonOf(o),
      root: reasonOf(o),
      status: o.status,
      value: o.decoded ? short(o.value) : undefined,
    };
  }

  async runRoundTrip(call, partner, combo) {
    const readArgs = argsFor(partner, combo, []);
    const first = await this.invoke(partner, readArgs);
    this.checkSentPath(partner, combo, first);
    const c1 = categoryOf(first);
    if (c1 !== 'expected') {
      return {
        category: c1,
        reason: `read before write-back (${partner.key}): ${reasonOf(first)}`,
        root: reasonOf(first),
        status: first.status,
        step: partner.key,
      };
    }
    let value = first.value;
    const isListEncoder = /List|Array/.test(call.def.bodyEncoder?.constructor?.name ?? '');
    if (isListEncoder && !Array.isArray(value)) {
      value = [value];
      this.quirks.set(call.key, `${call.key} writes a list (${converterText(call.def.bodyEncoder)}) where ${partner.key} decodes one value (${converterText(partner.def.responseBodyDecoder)}): written back as [value]`);
    }
    const write = await this.invoke(call, argsFor(call, combo, [value]), { checkSession: true });
    this.checkSentPath(call, combo, write);
    // The bytes the client really sent (a hand-written method may not use the table's encoder: variable.putMeta),
    // against the bytes the read decoded.
    const encoded = write.sent.length === 1 ? Buffer.from(write.sent[0]).subarray(7) : undefined;
    if (encoded && first.raw && !encoded.equals(Buffer.from(first.raw)) && !this.quirks.has(call.key)) {
      const enc = call.def.bodyEncoder, dec = partner.def.responseBodyDecoder;
      this.quirks.set(
        call.key,
        `${call.key} sends ${short(value)} as 0x${hex(encoded)} (${encoded.length} B, ${converterText(enc)}); ` +
          `${partner.key} read 0x${hex(first.raw)} (${first.raw.length} B, ${converterText(dec)})`,
      );
    }
    const c2 = categoryOf(write);
    if (c2 !== 'expected') {
      return {
        category: c2,
        reason: `write-back of ${short(value)}: ${reasonOf(write)}`,
        root: reasonOf(write),
        status: write.status,
        step: `${call.key} (write-back)`,
      };
    }
    const second = await this.invoke(partner, readArgs);
    const c3 = categoryOf(second);
    if (c3 !== 'expected') {
      return {
        category: c3,
        reason: `read after write-back: ${reasonOf(second)}`,
        root: reasonOf(second),
        status: second.status,
        step: `${partner.key} (after the write-back)`,
      };
    }
    if (!equalValues(first.value, second.value)) {
      return {
        category: 'mismatch',
        reason: `round trip differs: read ${short(first.value)}, wrote ${short(value)}, read back ${short(second.value)}`,
        root: 'round trip differs',
        status: second.status,
      };
    }
    return { category: 'expected', reason: 'ok', status: second.status, value: short(value) };
  }

  /**
   * Bundles and variables that exist: probed with the client's bundle.getName / variable.getType (not counted).
   * `variableDomain` keeps where each variable lives (VariableType.Domain).
   */
  async discoverInstances() {
    const found = { bundleId: [], variableId: [], variableDomain: {} };
    const probe = async (service, method, key) => {
      for (let id = 0; id <= 16; id++) {
        const o = await this.invoke({ service, method, key: `${service}.${method}` }, [id]);
        if (o.status !== undefined && (o.status & 0x80) === 0) {
          found[key].push(id);
          if (key === 'variableId' && o.decoded) found.variableDomain[id] = o.value?.domain;
        }
      }
    };
    await probe('bundle', 'getName', 'bundleId');
    await probe('variable', 'getType', 'variableId');
    return found;
  }

  async applyFixture() {
    require('@iotize/tap/ext/configurator');
    const runner = await this.conn.tap.configurator.setup({
      // the configurator reads `meta.skipFactoryReset` (see configuration.test.mjs)
      meta: { skipFactoryReset: true },
      config: {
        version: '1.0.0',
        application: { name: 'coverage' },
        target: { type: 'MCU', protocol: { type: 'SWD' } },
        data: {
          profiles: [{ username: 'admin', password: 'admin' }],
          bundles: [
            {
              id: 1,
              name: 'fixture',
              dataLog: { period: 10 },
              acls: { admin: { read: true, write: true } },
              variables: [
                { id: 1, domain: 'IN_TAP_VOLATIL', dataType: 'UINT32', value: 0x01020304, meta: { name: 'v1', unit: 'u' } },
              ],
            },
          ],
        },
      },
    });
    const skipped = [];
    await new Promise((resolve, reject) =>
      runner.run().subscribe({
        next: (event) => event.error && skipped.push(event.error.message),
        error: reject,
        complete: resolve,
      }),
    );
    if (skipped.length) this.events.push(`fixture: the configurator skipped ${skipped.length} key(s): ${[...new Set(skipped)].join('; ')}`);
    // still the admin session?
    const g = await this.conn.tap.service.interface.getCurrentGroupId();
    if (!g.isSuccessful() || g.body() !== ADMIN_ID) await login(this.conn.tap, 'admin', 'admin');
  }
}

/**
 * The variable the variable calls run on. A variable in the device comes first: its value holds still between
 * the two reads of a round trip, where one on the target may be moved by the simulation (the demo's counter and
 * wave are), which would read as a round trip that differs. Volatile before static: a write-back of a static one
 * writes the flash.
 */
function pickVariable(instances) {
  const { IN_TAP_VOLATIL, IN_TAP_STATIC } = VariableType.Domain;
  for (const domain of [IN_TAP_VOLATIL, IN_TAP_STATIC]) {
    const id = instances.variableId.find((v) => instances.variableDomain[v] === domain);
    if (id !== undefined) return id;
  }
  return instances.variableId[0];
}

// ---------------------------------------------------------------------------------------------------------------
// 4. report

const LABELS = {
  expected: 'answered as the client expects',
  documented: 'documented refusal',
  absent: 'absent, undocumented (0x84/0xA1)',
  stale: 'documented refusal no longer holds (table out of date)',
  decoder: 'decoder rejected',
  nvmFull: 'NVM full (0xA7)',
  other: 'other error statuses',
  mismatch: 'round trip differs (answered wrongly)',
  timeout: 'timeouts',
  session: 'admin session lost',
  dropped: 'connection dropped',
  client: 'client-side errors (nothing sent)',
};
const ORDER = Object.keys(LABELS);
const WORST = ['dropped', 'session', 'timeout', 'stale', 'mismatch', 'decoder', 'client', 'other', 'nvmFull', 'absent', 'documented', 'expected'];
/** What a safe call may end as and still count as answered the way the client expects. */
const COVERED = new Set(['expected', 'documented']);

const where = (c) => `${c.httpMethod} ${c.template}`;
const callLine = (c) => `${where(c).padEnd(26)} ${c.key.padEnd(40)} [${c.category}] ${c.reason}`;

/**
 * Run the coverage against a device started here (fresh temporary --state, removed at the end).
 *   demo        start the device with its demo configuration (default: unless `fixture`)
 *   fixture     start it empty and create bundle 1 + variable 1 with the client's configurator first
 *   deviceArgs  more arguments of the device; bin: the device binary (harness default)
 *   force       calls (service.method) run anyway as plain reads, last (see LWM2M_COVERAGE_FORCE)
 *   verbose     also list every safe call's outcome in the report
 * Returns the structured results and the report (`text`; `figureLines` and `notCoveredLines` are parts of it).
 * Throws if the run itself fails (the device does not start, a reconnection is impossible).
 */
export async function runCoverage({ fixture = false, demo = !fixture, deviceArgs = [], bin = DEVICE_BIN, force = [], verbose = VERBOSE } = {}) {
  if (fixture && demo) throw new Error('runCoverage: the fixture creates bundle 1 on an empty device: it cannot run on the demo');
  const started = Date.now();
  const forced = new Set(force);
  const run = new Run({ deviceArgs, demo, bin });
  let stopError;
  let result;
  try {
    run.stateDir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-coverage-state-'));
    await run.startDevice();
    await run.openConnection('A');
    result = await measure(run, { fixture, forced });
  } finally {
    try {
      await run.conn?.close();
    } catch {
      // ignore
    }
    try {
      await run.device?.stop();
    } catch (err) {
      stopError = err.message.split('\n')[0];
    }
    if (run.stateDir) rmSync(run.stateDir, { recursive: true, force: true });
  }
  return report(run, result, { fixture, demo, verbose, started, stopError });
}

async function measure(run, { fixture, forced }) {
  const { calls, helpers, notes } = enumerateCalls(run.conn.tap);
  const check = crossCheck(calls);
  const featureIds =
    check.featureIds?.length ? check.featureIds : Object.values(SpecialFeature).filter((v) => typeof v === 'number');

  if (fixture) await run.applyFixture();
  const instances = await run.discoverInstances();
  const variableId = pickVariable(instances);
  const ids = {
    groupId: [ADMIN_ID],
    featureId: featureIds,
    bundleId: instances.bundleId.length ? [instances.bundleId[0]] : [1],
    variableId: variableId !== undefined ? [variableId] : [1],
  };

  for (const call of calls) Object.assign(call, classify(call, calls, forced));
  const safe = calls.filter((c) => c.safe);
  const reads = safe.filter((c) => c.kind === 'read');
  const trips = safe.filter((c) => c.kind === 'roundtrip');

  // reads first (they see the state as configured), then the write-backs
  for (const call of [...reads.filter((c) => !c.forced), ...trips, ...reads.filter((c) => c.forced)]) {
    const doc = DOCUMENTED_REFUSALS[call.key];
    const results = [];
    for (const combo of variantsOf(call, ids)) {
      const r = call.kind === 'read' ? await run.runRead(call, combo) : await run.runRoundTrip(call, call.partner, combo);
      results.push({ combo, ...(doc ? judgeDocumented(doc, r) : r) });
    }
    const worst = WORST.find((cat) => results.some((r) => r.category === cat));
    const bad = results.filter((r) => !COVERED.has(r.category));
    call.category = worst;
    call.roots = [...new Set(bad.map((r) => r.root))];
    call.results = results;
    const shown = bad.length ? bad : results.filter((r) => r.category === 'documented');
    call.reason =
      shown.length === 0
        ? 'ok'
        : shown.map((r) => (results.length > 1 ? `[${comboText(r.combo)}] ${r.reason}` : r.reason)).join('; ');
    if (results.length > 1 && bad.length) {
      call.reason += ` (${results.length - bad.length}/${results.length} variants ok)`;
    }
  }

  // A table entry that names no safe call would be checked by nothing: the table is out of date.
  const byKey = new Map(calls.map((c) => [c.key, c]));
  const tableErrors = [];
  for (const [key, doc] of Object.entries(DOCUMENTED_REFUSALS)) {
    const c = byKey.get(key);
    if (!c) tableErrors.push(`${key} (${statusText(doc.status)}): no such call in the client`);
    else if (!c.safe) tableErrors.push(`${key} (${statusText(doc.status)}): not run, skipped as unsafe (${c.reason})`);
    else if (c.forced) tableErrors.push(`${key} (${statusText(doc.status)}): forced, not judged against the table`);
  }

  // Reads again after all the write-backs: a write-back of the value read must not change another value.
  // Informational (not counted above): some values move by themselves (clock, keep-alive counters, the demo).
  const changed = [];
  for (const call of reads.filter((c) => !c.forced && c.category === 'expected')) {
    for (const r of call.results) {
      const again = await run.runRead(call, r.combo);
      if (again.category === 'expected' && again.value !== r.value) {
        changed.push(`${call.key}${Object.keys(r.combo).length ? `(${comboText(r.combo)})` : ''}: ${r.value} -> ${again.value}`);
      } else if (again.category !== 'expected') {
        changed.push(`${call.key}${Object.keys(r.combo).length ? `(${comboText(r.combo)})` : ''}: ${r.value} -> ${again.reason}`);
      }
    }
  }
  return { calls, helpers, notes, check, instances, ids, safe, reads, trips, tableErrors, changed };
}

function report(run, m, { fixture, demo, verbose, started, stopError }) {
  const { calls, helpers, notes, check, instances, ids, safe, reads, trips, tableErrors, changed } = m;
  const out = [];
  const p = (s = '') => out.push(s);
  const device = demo ? 'demo configuration' : fixture ? 'empty (--no-demo), fixture bundle 1 + variable 1 (configurator)' : 'empty (--no-demo), no fixture';
  p(`Coverage of the @iotize/tap 2.7.0 service calls against ${run.bin}`);
  p(`(one connection, admin/admin; per-request timeout ${SEND_TIMEOUT_MS} ms; device: ${device}, fresh --state)`);
  p();
  const services = new Set(calls.map((c) => c.service));
  p(`service calls enumerated from tap.service.*.resources: ${calls.length} in ${services.size} services`);
  p(`  helper methods that are not service calls (not counted): ${helpers.join(', ') || 'none'}`);
  for (const n of notes) p(`  note: ${n}`);
  if (check.available) {
    p(`  cross-check with ${check.file}: ${check.specCount} calls there; ${check.lines.length ? `${check.lines.length} difference(s):` : 'same calls, methods, paths and body parameters'}`);
    for (const l of check.lines) p(`    ${l}`);
  } else {
    p(`  ${check.lines[0]}`);
  }
  const { pathChecks } = run;
  p(`  requests checked against the resources entries (method, object, instance, resource of the frame sent): ${pathChecks.checked}, ${pathChecks.mismatches.length ? 'mismatches:' : 'all as described'}`);
  for (const x of pathChecks.mismatches) p(`    ${x}`);
  p(`  instance ids: groupId ${ids.groupId}; featureId ${ids.featureId.join(',')}; bundleId ${ids.bundleId}${instances.bundleId.length ? '' : ' (no bundle answered on ids 0-16)'}; variableId ${ids.variableId}${instances.variableId.length ? ` (of ${instances.variableId.join(',')})` : ' (no variable answered on ids 0-16)'}`);
  p();
  const count = (cat) => safe.filter((c) => c.category === cat).length;
  const decoded = reads.filter((c) => c.category === 'expected').length;
  const equal = trips.filter((c) => c.category === 'expected').length;
  const documented = count('documented');
  const answered = decoded + equal + documented;
  const percent = safe.length ? (100 * answered) / safe.length : 0;
  const figure = out.length;
  p(`total calls:        ${calls.length}`);
  p(`safe calls:         ${safe.length}  (reads ${reads.length}, write-back round trips ${trips.length}); skipped as unsafe: ${calls.length - safe.length}`);
  p(`answered as the client expects: ${answered} / ${safe.length} = ${percent.toFixed(1)} %`);
  p(`  value decoded:        ${decoded}`);
  p(`  round trip equal:     ${equal}`);
  p(`  documented refusal:   ${documented}`);
  for (const cat of ORDER.slice(2)) p(`${(LABELS[cat] + ':').padEnd(56)}${count(cat)}`);
  p(`reconnections: ${run.reconnects}`);
  for (const e of run.events) p(`  ${e}`);
  if (stopError) p(`device stop: ${stopError}`);
  const figureLines = out.slice(figure);
  p();
  const notCovered = safe.filter((c) => !COVERED.has(c.category));
  const notCoveredStart = out.length;
  p(`safe calls not covered (${notCovered.length}):`);
  for (const c of notCovered) p(`  ${callLine(c)}`);
  if (tableErrors.length) {
    p(`documented refusals that check nothing (table out of date) (${tableErrors.length}):`);
    for (const e of tableErrors) p(`  ${e}`);
  }
  const notCoveredLines = out.slice(notCoveredStart);
  p();
  const refused = safe.filter((c) => c.category === 'documented');
  const documentedStart = out.length;
  p(`documented refusals (${refused.length} of ${Object.keys(DOCUMENTED_REFUSALS).length} in the table):`);
  for (const c of refused) p(`  ${callLine(c)}`);
  const documentedLines = out.slice(documentedStart);
  p();
  // reasons: the status name or decoder message that stopped the call (at whichever step of a round trip)
  const tally = new Map();
  for (const c of notCovered) {
    for (const root of c.roots) {
      const r = root.replace(/0x[0-9a-f]{3,}/g, '0x…');
      if (!tally.has(r)) tally.set(r, []);
      tally.get(r).push(c.key);
    }
  }
  p(`reasons, most common first (calls):`);
  for (const [r, keys] of [...tally].sort((a, b) => b[1].length - a[1].length)) {
    p(`  ${String(keys.length).padStart(3)}  ${r}: ${keys.join(', ')}`);
  }
  p();
  const unsafe = calls.filter((c) => !c.safe);
  p(`skipped as unsafe (${unsafe.length}):`);
  for (const c of unsafe) p(`  ${where(c).padEnd(26)} ${c.key.padEnd(40)} ${c.reason}`);
  p();
  if (verbose) {
    p(`every safe call (verbose):`);
    for (const c of safe) {
      for (const r of c.results) {
        const v = comboText(r.combo);
        p(`  ${where(c).padEnd(26)} ${(c.key + (v ? `(${v})` : '')).padEnd(50)} [${r.category}] ${r.category === 'expected' ? r.value : r.reason}`);
      }
    }
    p();
  }
  p(`write-back pairs (write <- read used for its value):`);
  for (const c of trips) {
    const same = c.def.bodyEncoder === c.partner.def.responseBodyDecoder;
    p(`  ${c.key} <- ${c.partner.key}${same ? '' : `  (encoder ${converterText(c.def.bodyEncoder)}, decoder ${converterText(c.partner.def.responseBodyDecoder)})`}`);
  }
  p();
  p(`reads whose value changed between the read phase and the end of the write-backs (${changed.length}; informational):`);
  for (const c of changed) p(`  ${c}`);
  p();
  p(`client quirks seen (the write's encoder does not reproduce the bytes the read decoded) (${run.quirks.size}):`);
  for (const q of run.quirks.values()) p(`  ${q}`);
  p();
  p(`run time: ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const summary = (c) => ({ key: c.key, where: where(c), kind: c.kind, category: c.category, reason: c.reason, line: callLine(c) });
  return {
    text: out.join('\n') + '\n',
    figureLines,
    notCoveredLines,
    documentedLines,
    figure: { safe: safe.length, answered, decoded, roundTrips: equal, documented, percent },
    counts: Object.fromEntries(ORDER.map((cat) => [cat, count(cat)])),
    calls: safe.map(summary),
    notCovered: notCovered.map(summary),
    documented: refused.map(summary),
    wrong: safe.filter((c) => WRONG.has(c.category)).map(summary),
    unanswered: safe.filter((c) => UNANSWERED.has(c.category)).map(summary),
    tableErrors,
    instances,
    ids,
    events: run.events,
    pathMismatches: pathChecks.mismatches,
    stopError,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// the report, run by hand

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const fixture = !!process.env.LWM2M_COVERAGE_FIXTURE;
  let exitCode = 0;
  try {
    const result = await runCoverage({
      fixture,
      demo: !fixture && !process.env.LWM2M_COVERAGE_NO_DEMO,
      force: (process.env.LWM2M_COVERAGE_FORCE || '').split(',').map((x) => x.trim()).filter(Boolean),
    });
    process.stdout.write(result.text);
  } catch (err) {
    process.stdout.write(`coverage run failed: ${err?.stack || err}\n`);
    exitCode = 1;
  }
  process.exit(exitCode);
}
