// Interop test: single packets (object 1024 resources 80-83) and the firmware update, with the real npm
// client `@iotize/tap@2.7.0` over WebSocket (protocol.md §11, README decisions 6-8).
//
// Every packet is built by the client's own code: SinglePacketBuilder (layout, padding, lengths),
// EncryptedSinglePacketConverter with the options of SinglePacketEncryptionOptionsBuilder (the key of
// protocol.md §11.2 from username + the sender's SCRAM hashKey storedKey‖serverKey), the multi-request
// encoder of /1024//89 (interfaceConverters.multiRequestFrame) for the requests a COMMAND packet carries,
// every request by the client's services (tap.service.singlePacket.writeAndExecute[Bytes], getInfo,
// createStoreLoader[FromBytes], executeSinglePacketInStore) and the firmware update by the client's own
// updater (tap.firmwareUpdater, ext/firmware-update). The only bytes made here are deliberate corruptions
// (one flipped bit) of packets the client built.
//
// Checked:
//   0. (no device) the client's encoders reproduce vectors.txt section B: the plain and the encrypted
//      "hello single packet!" packets and their key, the chunks and the execute CRC, the 4-byte-offset
//      chunk, the store info, the SCRAM record, the multi-request body; the three ways the client has to
//      get a packet key (SCRAM record, password + salt + iterations, SCRAM session) agree.
//   1. POST /1024//80 as anonymous, in clear and inside tap.encryption.start(): an admin-signed COMMAND
//      packet runs with admin rights (PUT /1024//9 sets the app name, read back as admin); a plain packet
//      claiming senderId 0xFF runs as anonymous (its PUT item 0x81, its GET /3//2 item served).
//   2. Refused packets change nothing: a flipped bit (ciphertext, header, CRC) 0x80, another password's
//      key 0x80, the accepted packet again 0x81, an older packetId 0x81; the refused ones do not use up
//      their packetId.
//   3. The store: /81 is 4 bytes, EMPTY, USED after chunks, EMPTY after every execute; /83 with a wrong
//      CRC 0x86 and nothing executed; a damaged stored packet 0x80; the client's createStoreLoader with
//      credentials and its own execute step.
//   4. A restart on the same --state: the last accepted packet is still refused (0x81), a newer one runs.
//   5. The firmware update: a 64 KiB image in an admin-signed TARGET_FW_UPDATE packet, loaded and applied
//      by tap.firmwareUpdater on an anonymous connection, lands byte for byte in DIR/firmware.bin and the
//      device prints "firmware image: 65536 bytes, CRC 0x........"; a plain, a user-signed, a
//      blank-key ("IoTize") firmware packet, one executed with a wrong CRC and a replay leave it alone.

import { describe, test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ADMIN_ID,
  ResultCode,
  Tap,
  WebSocketProtocol,
  call,
  connectTap,
  describeRequestFrame,
  expectOkBody,
  expectStatus,
  hex,
  hexStatus,
  login,
  logout,
  require,
  sleep,
  startDevice,
  statusName,
  statusOfError,
  wireLog,
  deviceLog,
} from './harness.mjs';

const { ScramAuth } = require('@iotize/tap/auth');
const { ServiceCallRunner, TapResponse } = require('@iotize/tap');
const { CRC, TapStreamWriter } = require('@iotize/tap/client/impl');
const singlePacketModule = require('@iotize/tap/service/impl/single-packet');
const {
  EncryptedSinglePacketConverter,
  SinglePacket,
  SinglePacketBuilder,
  SinglePacketSplitter,
  SinglePacketStoreInfo,
  SinglePacketStoreLoader,
  singlePacketConverters,
} = singlePacketModule;
// The class that builds the encryption options of a packet (key from a SCRAM hashKey, from a password, from
// the SCRAM session) is exported by the package only under its Angular-compiler alias `ɵa`.
const SinglePacketEncryptionOptionsBuilder = singlePacketModule['ɵa'];
const { interfaceConverters, MultiRequestFrame } = require('@iotize/tap/service/impl/interface');
require('@iotize/tap/ext/firmware-update'); // registers tap.firmwareUpdater

const ITERATIONS = 1000;
const ADMIN_SALT = Uint8Array.from([0xa1, 0xb2, 0xc3, 0xd4]);
const USER_SALT = Uint8Array.from([0xb5, 0x06, 0x17, 0x28]);
/** A user profile without every right (the supervisor is handled like the administrator). */
const USER_ID = 5;
const USER_NAME = 'operator';
const SENDER = { ADMIN: 0xff, SUPERVISOR: 0xfe, IOTIZE: 0xfd, ANONYMOUS: 0x00, USER: USER_ID };
const { EMPTY, USED } = SinglePacketStoreInfo.State;
const STATE_NAMES = { 0: 'UNAVAILABLE', 1: 'EMPTY', 2: 'USED', 3: 'FULL', 4: 'ERROR' };
const FIRMWARE_SIZE = 65536;
const FIRMWARE_LINE = /firmware image: (\d+) bytes, CRC 0x([0-9a-f]{8})$/gm;

// ---------------------------------------------------------------------------------------------------------------
// packets, built by the client

/**
 * A Tap that is never connected: only its services' `...Call()` builders are used, to get the call options
 * (method, path, body encoder) the client's own services would send.
 */
const builderTap = Tap.fromProtocol(new WebSocketProtocol({ url: 'ws://127.0.0.1:9' }));
const calls = {
  putAppName: (name) => builderTap.service.interface.putAppNameCall(name),
  getAppName: () => builderTap.service.interface.getAppNameCall(),
  getSerialNumber: () => builderTap.service.device.getSerialNumberCall(),
};

/**
 * The requests of a COMMAND packet in the multi-request layout `len u16 | Tap request frame | expectedStatus u8`,
 * made as the client's InterfaceService.executeMultipleCalls makes the body of /1024//89: each request frame by
 * ServiceCallRunner.toTapRequest, its length = payload + 7 (the client's TAP_REQUEST_FRAME_HEADER_LENGTH), the
 * whole by the client's MultiRequestFrameConverter.
 */
function multiRequestData(serviceCalls, expected = MultiRequestFrame.ExpectedResponseStatus.ANYTHING) {
  const requests = serviceCalls.map((c) => {
    const request = ServiceCallRunner.toTapRequest(c);
    return { request, requestLen: request.payload.length + 7, expectedResponseStatus: expected };
  });
  return interfaceConverters.multiRequestFrame.encode({ requests });
}

/** A packet model by SinglePacketBuilder; `encrypted` must be set before build() (it changes the lengths). */
function packetModel(data, type, { packetId, senderId, encrypted }) {
  const builder = SinglePacketBuilder.create(data, type).setPacketId(packetId).setSenderId(senderId);
  if (encrypted) builder.setEncryption(true);
  return builder.build();
}
const commandModel = (serviceCalls, options) => packetModel(multiRequestData(serviceCalls), SinglePacket.PacketType.COMMAND, options);

/** Encryption options of a sender from its SCRAM record (storedKey 16 | serverKey 16 | salt 4). */
const credentialsFromRecord = (username, record) => SinglePacketEncryptionOptionsBuilder.fromHashKey(record.slice(0, 32), username);
/** The client's converter: encrypts (key of protocol.md §11.2) when header.encryption is set. */
const encodeSigned = (model, credentials) => new EncryptedSinglePacketConverter(credentials).encode(model);
/** The client's plain packet encoder (the body encoder of writeAndExecute). */
const encodePlain = (model) => singlePacketConverters.singlePacket.encode(model);

/** A copy of `bytes` with bit `bit` of byte `index` flipped. */
function flipBit(bytes, index, bit = 0) {
  const copy = Uint8Array.from(bytes);
  copy[index] ^= 1 << bit;
  return copy;
}

/** Deterministic pseudo-random bytes (xorshift32). */
function pseudoRandomBytes(length, seed) {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** Firmware packet data: image length u32 big-endian ‖ image (written with the client's TapStreamWriter). */
const firmwareData = (image) => TapStreamWriter.create(4 + image.length).writeU4(image.length).writeBytes(image).toBytes;

/** CRC-32/MPEG-2 as the client computes it (impl.CRC), as `0x%08x`. */
const crcHex = (bytes) => '0x' + (CRC.mpeg2().compute(bytes) >>> 0).toString(16).padStart(8, '0');

// ---------------------------------------------------------------------------------------------------------------
// answers

/** The items of a multi-request answer (`len u16 | status u8 | data`), decoded by the client's MultiResponseFrameConverter. */
function decodeItems(what, response) {
  expectStatus(what, response, ResultCode.OK);
  const raw = response.rawBody();
  try {
    return interfaceConverters.multiResponseFrame.decode(raw).responses.map((r) => ({
      status: r.response.status,
      data: Buffer.from(r.response.data || []),
    }));
  } catch (err) {
    assert.fail(`${what}: status 00 but its body 0x${hex(raw)} is no multi-request answer: ${err.message}${wireLog()}`);
  }
}
const describeItems = (items) => items.map((i) => `${hexStatus(i.status)}${i.data.length ? ' ' + hex(i.data) : ''}`).join(', ');

/** Assert the answer's items have these statuses (and, where given, these data); return the items. */
function expectItems(what, response, expected) {
  const items = decodeItems(what, response);
  const shown = `[${describeItems(items)}] (raw body 0x${hex(response.rawBody())})`;
  assert.equal(items.length, expected.length, `${what}: expected ${expected.length} item answer(s), got ${shown}${wireLog()}`);
  expected.forEach((e, i) => {
    assert.equal(items[i].status, e.status, `${what}: item ${i + 1} must answer ${statusName(e.status)}, got ${shown}${wireLog()}`);
    if (e.data !== undefined) {
      assert.equal(hex(items[i].data), hex(e.data), `${what}: data of item ${i + 1}, got ${shown}${wireLog()}`);
    }
  });
  return items;
}

/** Run a client StepOperations (store loader, firmware updater) to its end; returns { events, error }. */
function runSteps(observable) {
  const events = [];
  return new Promise((resolve) =>
    observable.subscribe({
      next: (e) => events.push(e),
      error: (error) => resolve({ events, error }),
      complete: () => resolve({ events, error: undefined }),
    }),
  );
}
const describeError = (err) =>
  `${err && (err.code || err.name)}: ${err && err.message}${err && err.cause ? ` (cause: ${err.cause.message || err.cause})` : ''}`;

/** Run a client step sequence that must succeed. */
async function runStepsOk(what, observable) {
  const { events, error } = await runSteps(observable);
  if (error) {
    assert.fail(`${what} failed: ${describeError(error)}, status ${hexStatus(statusOfError(error))}${wireLog()}`);
  }
  return events;
}

// ---------------------------------------------------------------------------------------------------------------
// 0. self-check of the packet construction (no device)

test('self-check (no device): the client builds the single packets, chunks and keys of vectors.txt section B', async () => {
  const text = Uint8Array.from(Buffer.from('hello single packet!'));
  const fixed = (builder) => builder.setPacketId(7).setSalt(0x1234).setSendTime(0x60000000).setLogTime(0x5fffff00);

  // Plain COMMAND packet.
  const plain = fixed(SinglePacketBuilder.create(text, SinglePacket.PacketType.COMMAND)).build();
  assert.equal(plain.header.packetLength, 44);
  const plainBytes = encodePlain(plain);
  assert.equal(
    hex(plainBytes),
    '60000000002c000700000000200012345fffff00001468656c6c6f2073696e676c65207061636b6574210000dc7d19b4',
  );
  assert.equal(hex(EncryptedSinglePacketConverter.createWithBlankKey().encode(plain)), hex(plainBytes), 'the default converter leaves a plain packet plain');

  // Encrypted COMMAND packet, user admin, blank 32-byte hashKey, senderId FF.
  const encrypted = fixed(SinglePacketBuilder.create(text, SinglePacket.PacketType.COMMAND)).setEncryption(true).setSenderId(SENDER.ADMIN).build();
  assert.equal(encrypted.header.packetLength, 2);
  const blankAdmin = SinglePacketEncryptionOptionsBuilder.fromBlankKey('admin');
  const converter = new EncryptedSinglePacketConverter(blankAdmin);
  assert.equal(hex(converter.computeKey(encrypted.header)), 'bcb464cef870ec5e50c7b9206d86db18');
  assert.equal(
    hex(converter.encode(encrypted)),
    '60000000000200070000000022ff123437b404cbd323c83505a37dd1e0234956e53e19b89b84413c2407f0a000637cb1',
  );
  assert.equal(hex(new TapStreamWriter(12).writeSinglePacketHeader(encrypted.header).toBytes), '000200070000000022ff1234');

  // Chunks of the plain packet (32-byte parts, as in the vectors) and the execute CRC: with the splitter, and
  // exactly as the client's SinglePacketStoreLoader sends them (its service replaced by a recorder).
  const chunks = new SinglePacketSplitter({ chunkSize: 32, pad: true }).chunk(plainBytes);
  assert.deepEqual(chunks.map((c) => hex(singlePacketConverters.singlePacketChunk.encode(c))), [
    '0002000060000000002c000700000000200012345fffff00001468656c6c6f2073696e67',
    '000100026c65207061636b6574210000dc7d19b4',
  ]);
  assert.equal(SinglePacketStoreLoader.computeCRC(chunks).toString(16), '82fd103f');
  const sent = [];
  const recorder = {
    writeChunk: async (chunk) => (sent.push(`82 ${hex(singlePacketConverters.singlePacketChunk.encode(chunk))}`), TapResponse.SUCCESS()),
    executeSinglePacketInStore: async (crc) => (sent.push(`83 ${(crc >>> 0).toString(16).padStart(8, '0')}`), TapResponse.SUCCESS()),
  };
  await runStepsOk('SinglePacketStoreLoader (recorder)', SinglePacketStoreLoader.createFromBytes(plainBytes, recorder, { chunkSize: 32, execute: true }).asObservable());
  assert.deepEqual(sent, [
    '82 0002000060000000002c000700000000200012345fffff00001468656c6c6f2073696e67',
    '82 000100026c65207061636b6574210000dc7d19b4',
    '83 82fd103f',
  ]);
  assert.equal(
    hex(singlePacketConverters.singlePacketChunk.encode({ format: 8, length: 1, offset: 0x10000, data: new Uint8Array(16).fill(0xee) })),
    '800100010000eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee',
  );
  assert.equal(singlePacketConverters.singlePacketStoreInfo.decode(Uint8Array.from([0, 0, 0, 1])).state, EMPTY);

  // The multi-request layout of a COMMAND packet's data (vectors §9: GET /3//2 ANY, PUT /1029/2/4 0102 SUCCESS).
  const requests = [
    [builderTap.service.device.getSerialNumberCall(), 0xff],
    [builderTap.service.variable.putValueCall(2, Uint8Array.from([1, 2])), 0x7f],
  ].map(([c, expectedResponseStatus]) => {
    const request = ServiceCallRunner.toTapRequest(c);
    return { request, requestLen: request.payload.length + 7, expectedResponseStatus };
  });
  assert.equal(hex(interfaceConverters.multiRequestFrame.encode({ requests })), '0007010003ffff0002ff00090304050002000401027f');
  assert.equal(hex(multiRequestData([calls.putAppName('x')])), '0008030400ffff000978ff');

  // The sender's key: its SCRAM record (the device's view) = password + salt + iterations (the client's
  // fromUserCredentials); the SCRAM record of vectors §7.
  const record = ScramAuth.createScramPasswordKey('admin', { salt: ADMIN_SALT, iterationNumber: ITERATIONS });
  assert.equal(hex(record), '76f1fcd0e4af69633612304ff45d2ad34cdd977c33381fc808277ca2b45e22fea1b2c3d4');
  const fromRecord = credentialsFromRecord('admin', record);
  const fromPassword = SinglePacketEncryptionOptionsBuilder.fromUserCredentials(
    { username: 'admin', password: 'admin' },
    { salt: ADMIN_SALT, iterationNumber: ITERATIONS },
  );
  assert.deepEqual(fromRecord, fromPassword);
  assert.equal(fromRecord.serialNumber, 'IoTize_FWUpdate_SP');
  assert.equal(hex(encodeSigned(encrypted, fromRecord)), hex(encodeSigned(encrypted, fromPassword)));
  assert.notEqual(hex(encodeSigned(encrypted, fromRecord)), hex(converter.encode(encrypted)), 'a real hashKey changes the ciphertext');

  // The client's createStoreLoader(packet, options, credentials) sets the sender id of "admin" itself: FF.
  const forLoader = fixed(SinglePacketBuilder.create(text, SinglePacket.PacketType.COMMAND)).setEncryption(true).build();
  const stub = { createStoreLoaderFromBytes: (bytes) => bytes };
  const loaded = singlePacketModule.SinglePacketService.prototype.createStoreLoader.call(stub, forLoader, {}, fromRecord);
  assert.equal(forLoader.header.senderId, SENDER.ADMIN);
  assert.equal(hex(loaded), hex(encodeSigned(forLoader, fromRecord)));

  // A 64 KiB firmware packet: encrypted, lengths in 16-byte units, no extended header, a multiple of 16 bytes.
  const image = pseudoRandomBytes(FIRMWARE_SIZE, 0x5eed);
  const fw = packetModel(firmwareData(image), SinglePacket.PacketType.TARGET_FW_UPDATE, { packetId: 1, senderId: SENDER.ADMIN, encrypted: true });
  const file = encodeSigned(fw, fromRecord);
  assert.equal(fw.header.isExtended, false);
  assert.equal(file.length % 16, 0);
  assert.equal(file.length, 16 + fw.header.packetLength * 16);
  const back = new EncryptedSinglePacketConverter(fromRecord).decode(file);
  assert.equal(back.header.messageType, SinglePacket.PacketType.TARGET_FW_UPDATE);
  assert.equal(hex(back.payload.data.subarray(0, 4)), '00010000');
  assert.equal(Buffer.compare(Buffer.from(back.payload.data.subarray(4, 4 + FIRMWARE_SIZE)), Buffer.from(image)), 0);
});

// ---------------------------------------------------------------------------------------------------------------
// against the device

describe('port-linux serves single packets and the firmware update', () => {
  let device;
  let stateDir;
  let stderr = '';
  /** packetIds increase per sender: one counter for every packet sent (plain or signed, any sender). */
  let lastPacketId = 0;
  const nextPacketId = () => ++lastPacketId;
  /** The app name the device must hold (read back as admin). */
  let appName;

  const adminRecord = ScramAuth.createScramPasswordKey('admin', { salt: ADMIN_SALT, iterationNumber: ITERATIONS });
  const userRecord = ScramAuth.createScramPasswordKey('operator', { salt: USER_SALT, iterationNumber: ITERATIONS });
  /** Another password's record, same username: a key the device does not know for admin. */
  const otherRecord = ScramAuth.createScramPasswordKey('not-the-password', { salt: ADMIN_SALT, iterationNumber: ITERATIONS });
  const admin = credentialsFromRecord('admin', adminRecord);
  const user = credentialsFromRecord(USER_NAME, userRecord);
  const wrongAdmin = credentialsFromRecord('admin', otherRecord);

  /** Connections of the running test: closed by afterEach even when an assertion failed (one interlocutor). */
  const openConnections = [];
  async function open(options) {
    const conn = await connectTap(device.port, options);
    openConnections.push(conn);
    return conn;
  }
  afterEach(async () => {
    for (const conn of openConnections.splice(0)) await conn.close();
  });

  async function start() {
    device = await startDevice(['--state', stateDir]);
    device.child.stderr.on('data', (chunk) => (stderr += chunk.toString('utf8')));
  }

  /** Connect as admin (SCRAM), read the app name, log out, disconnect. */
  async function appNameAsAdmin(label) {
    const conn = await open({ label });
    await login(conn.tap, 'admin', 'admin');
    const name = expectOkBody(`${label}: GET /1024//9 as admin`, await call('GET /1024//9', () => conn.tap.service.interface.getAppName()));
    await logout(conn.tap);
    await conn.close();
    return name;
  }
  async function expectAppName(label, expected, why) {
    const name = await appNameAsAdmin(label);
    assert.equal(name, expected, `${label}: app name /1024//9 (read as admin) — ${why}${wireLog()}${deviceLog()}`);
  }

  async function storeState(tap, what) {
    const response = await call('GET /1024//81', () => tap.service.singlePacket.getInfo());
    expectStatus(`${what}: GET /1024//81`, response, ResultCode.OK);
    assert.equal(response.rawBody().length, 4, `${what}: GET /1024//81 answers 4 bytes, got 0x${hex(response.rawBody())}${wireLog()}`);
    return response.body().state;
  }
  async function expectStore(tap, what, state) {
    const got = await storeState(tap, what);
    assert.equal(got, state, `${what}: store state ${got} (${STATE_NAMES[got]}), expected ${state} (${STATE_NAMES[state]})${wireLog()}`);
  }

  const writeAndExecuteBytes = (tap, what, bytes) =>
    call(`${what}: POST /1024//80`, () => tap.service.singlePacket.writeAndExecuteBytes(bytes));

  before(async () => {
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'lwm2m-interop-packets-'));
    await start();
    const conn = await open({ label: 'setup' });
    const { tap } = conn;
    await login(tap, 'admin', 'admin');
    appName = 'initial';
    expectOkBody('PUT /1024//9', await call('PUT /1024//9', () => tap.service.interface.putAppName(appName)));
    // SCRAM exactly as scram.test.mjs enables it, plus a user profile with its own record (a real sender key without every right).
    expectOkBody('PUT /1024//42', await call('PUT /1024//42', () => tap.service.scram.putHashIteration(ITERATIONS)));
    assert.equal(expectOkBody('GET /1024//42', await call('GET /1024//42', () => tap.service.scram.getHashIteration())), ITERATIONS);
    const options = expectOkBody('GET /1024//6', await call('GET /1024//6', () => tap.service.interface.getSecurityOptions()));
    expectOkBody(
      'PUT /1024//6',
      await call('PUT /1024//6', () => tap.service.interface.putSecurityOptions({ ...options, scramActivated: true })),
    );
    expectOkBody('POST /1025/65535/2', await call('POST /1025/65535/2', () => tap.service.group.changePasswordKey(ADMIN_ID, adminRecord)));
    expectOkBody(`POST /1025/${USER_ID}/65535`, await call('create the user', () => tap.service.group.create(USER_ID)));
    expectOkBody(`PUT /1025/${USER_ID}/0`, await call('name the user', () => tap.service.group.putName(USER_ID, USER_NAME)));
    expectOkBody(
      `POST /1025/${USER_ID}/2`,
      await call(`POST /1025/${USER_ID}/2`, () => tap.service.group.changePasswordKey(USER_ID, userRecord)),
    );
    // Save (the configurator's final PUT /1024//10), so that the SCRAM records survive the restart of test 4.
    expectOkBody('PUT /1024//10', await call('PUT /1024//10', () => tap.service.interface.putConfigVersion('1.0.1')));
    await logout(tap);
    await conn.close();

    // The third way the client has to get a packet key: the data of its SCRAM session equals the record.
    const scram = await open({ label: 'scram' });
    await login(scram.tap, 'admin', 'admin');
    assert.equal(scram.tap.encryption.isStarted, true, `encryption runs after a SCRAM login${wireLog()}`);
    const session = scram.tap.auth.sessionDataSnapshot;
    const fromSession = SinglePacketEncryptionOptionsBuilder.fromCurrentSessionData({
      username: 'admin',
      storedKey: session.storedKey,
      serverKey: session.serverKey,
    });
    assert.equal(hex(fromSession.hashKey), hex(admin.hashKey), 'packet key from the SCRAM session = from the SCRAM record');
    assert.equal(expectOkBody('GET /1024//9', await call('GET /1024//9', () => scram.tap.service.interface.getAppName())), appName);
    await logout(scram.tap);
    await scram.close();
  });

  after(async () => {
    try {
      if (device) await device.stop();
    } finally {
      if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    }
  });

  // -------------------------------------------------------------------------------------------------------------
  // 1. POST /1024//80

  for (const mode of ['clear', 'encryption.start()']) {
    test(`POST /1024//80 as anonymous (${mode}): an admin-signed packet runs as admin, a plain one claiming admin as anonymous`, async () => {
      const label = mode === 'clear' ? 'anon80' : 'enc80';
      const conn = await open({ label });
      const { tap } = conn;
      const from = conn.frames.length;
      if (mode !== 'clear') {
        await call('tap.encryption.start()', () => tap.encryption.start());
        assert.equal(tap.encryption.isStarted, true);
      }
      const serial = Buffer.from(expectOkBody('GET /3//2', await call('GET /3//2', () => tap.service.device.getSerialNumber())), 'latin1');
      assert.equal(
        expectOkBody('GET /1024//7', await call('GET /1024//7', () => tap.service.interface.getCurrentGroupId())),
        0,
        `the connection is anonymous${wireLog()}`,
      );

      // Plain, claiming admin: executed with anonymous rights (the GET served, the PUT refused).
      const claimed = commandModel([calls.getSerialNumber(), calls.putAppName(`plain-${label}`)], {
        packetId: nextPacketId(),
        senderId: SENDER.ADMIN,
        encrypted: false,
      });
      expectItems(
        'plain packet claiming senderId FF [GET /3//2, PUT /1024//9]',
        await call('POST /1024//80', () => tap.service.singlePacket.writeAndExecute(claimed)),
        [{ status: ResultCode.OK, data: serial }, { status: ResultCode.UNAUTHORIZED }],
      );

      // Signed by admin: executed with admin's rights, in order.
      const name = `signed-${label}`;
      const signed = encodeSigned(
        commandModel([calls.putAppName(name), calls.getAppName()], { packetId: nextPacketId(), senderId: SENDER.ADMIN, encrypted: true }),
        admin,
      );
      expectItems('admin-signed packet [PUT /1024//9, GET /1024//9]', await writeAndExecuteBytes(tap, 'admin-signed', signed), [
        { status: ResultCode.OK },
        { status: ResultCode.OK, data: Buffer.from(name) },
      ]);
      appName = name;
      // Rights came from the packet only: the connection is still anonymous.
      expectStatus('PUT /1024//9 after the packets', await call('PUT /1024//9', () => tap.service.interface.putAppName('anon')), ResultCode.UNAUTHORIZED);
      if (mode !== 'clear') {
        const clear80 = conn.frames.slice(from).filter((f) => describeRequestFrame(f).startsWith('POST /1024//80'));
        assert.equal(clear80.length, 0, `inside the encrypted session /1024//80 travels in the tunnel only${wireLog()}`);
        tap.encryption.stop();
      }
      await conn.close();
      await expectAppName(`${label}-check`, name, 'set by the admin-signed packet only');
    });
  }

  // -------------------------------------------------------------------------------------------------------------
  // 2. refused packets

  test('refused packets change nothing: flipped bits 0x80, a wrong key 0x80, a replay 0x81, an older packetId 0x81', async () => {
    const conn = await open({ label: 'refused' });
    const { tap } = conn;
    const before = appName;
    const olderId = nextPacketId(); // kept unused until the end: older than the accepted one below
    const id = nextPacketId();
    const good = commandModel([calls.putAppName('accepted')], { packetId: id, senderId: SENDER.ADMIN, encrypted: true });
    const goodBytes = encodeSigned(good, admin);

    const plainBytes = encodePlain(commandModel([calls.getSerialNumber()], { packetId: nextPacketId(), senderId: SENDER.ANONYMOUS, encrypted: false }));
    const refusals = [
      ['a flipped bit in the ciphertext', flipBit(goodBytes, 20, 3), ResultCode.BAD_REQUEST],
      ['a flipped bit in the last (CRC) block', flipBit(goodBytes, goodBytes.length - 1, 0), ResultCode.BAD_REQUEST],
      ['a flipped bit in the header (salt)', flipBit(goodBytes, 15, 0), ResultCode.BAD_REQUEST],
      ["the same packet encrypted with another password's key", encodeSigned(good, wrongAdmin), ResultCode.BAD_REQUEST],
      ['a plain packet with a flipped CRC bit', flipBit(plainBytes, plainBytes.length - 1, 0), ResultCode.BAD_REQUEST],
    ];
    for (const [what, bytes, status] of refusals) {
      expectStatus(what, await writeAndExecuteBytes(tap, what, bytes), status);
    }
    await conn.close();
    await expectAppName('refused-check', before, 'no refused packet may execute');

    // The intact packet: its packetId was not used up by its damaged copies.
    const conn2 = await open({ label: 'replay' });
    expectItems('the intact packet after its damaged copies', await writeAndExecuteBytes(conn2.tap, 'intact', goodBytes), [{ status: ResultCode.OK }]);
    appName = 'accepted';
    // Now replays and older packetIds.
    const replayed = encodeSigned(commandModel([calls.putAppName('replayed')], { packetId: id, senderId: SENDER.ADMIN, encrypted: true }), admin);
    const older = encodeSigned(commandModel([calls.putAppName('older')], { packetId: olderId, senderId: SENDER.ADMIN, encrypted: true }), admin);
    expectStatus('the accepted packet again, byte for byte', await writeAndExecuteBytes(conn2.tap, 'replay', goodBytes), ResultCode.UNAUTHORIZED);
    expectStatus('another admin packet with the same packetId', await writeAndExecuteBytes(conn2.tap, 'same id', replayed), ResultCode.UNAUTHORIZED);
    expectStatus('an admin packet with an older packetId', await writeAndExecuteBytes(conn2.tap, 'older id', older), ResultCode.UNAUTHORIZED);
    await conn2.close();
    await expectAppName('replay-check', 'accepted', 'replays and older packetIds execute nothing');
  });

  // -------------------------------------------------------------------------------------------------------------
  // 3. the store

  test('the store: /81 EMPTY, USED after chunks, EMPTY after every execute; a wrong CRC 0x86 executes nothing', async () => {
    const conn = await open({ label: 'store' });
    const { tap } = conn;
    const serial = Buffer.from(expectOkBody('GET /3//2', await call('GET /3//2', () => tap.service.device.getSerialNumber())), 'latin1');
    await expectStore(tap, 'before any chunk', EMPTY);

    const name = 'from-the-store';
    const bytes = encodeSigned(
      commandModel([calls.putAppName(name), calls.getSerialNumber()], { packetId: nextPacketId(), senderId: SENDER.ADMIN, encrypted: true }),
      admin,
    );
    const chunkSize = 32;
    const chunks = new SinglePacketSplitter({ chunkSize, pad: true }).chunk(bytes);
    assert.ok(chunks.length >= 2, `the packet needs several chunks (${bytes.length} bytes)`);
    const crc = SinglePacketStoreLoader.computeCRC(chunks) >>> 0;
    const load = async (what) => {
      const from = conn.frames.length;
      await runStepsOk(`${what}: SinglePacketStoreLoader (POST /1024//82)`, tap.service.singlePacket.createStoreLoaderFromBytes(bytes, { chunkSize }).asObservable());
      const sent = conn.frames.slice(from).filter((f) => describeRequestFrame(f).startsWith('POST /1024//82'));
      assert.deepEqual(
        sent.map((f) => hex(f.subarray(7))),
        chunks.map((c) => hex(singlePacketConverters.singlePacketChunk.encode(c))),
        `${what}: the chunks on the wire`,
      );
    };

    await load('first load');
    await expectStore(tap, 'after the chunks', USED);
    expectStatus(
      'POST /1024//83 with a wrong CRC',
      await call('POST /1024//83', () => tap.service.singlePacket.executeSinglePacketInStore((crc ^ 0x00000001) >>> 0)),
      ResultCode.NOT_ACCEPTABLE,
    );
    await expectStore(tap, 'after the failed execute', EMPTY);

    await load('second load');
    await expectStore(tap, 'after the chunks again', USED);
    expectItems(
      'POST /1024//83 with the CRC of the chunks [PUT /1024//9, GET /3//2]',
      await call('POST /1024//83', () => tap.service.singlePacket.executeSinglePacketInStore(crc)),
      [{ status: ResultCode.OK }, { status: ResultCode.OK, data: serial }],
    );
    appName = name;
    await expectStore(tap, 'after the execute', EMPTY);

    // A damaged packet in the store, executed with the CRC of what was stored: the packet's own check refuses it.
    const damaged = flipBit(
      encodeSigned(commandModel([calls.putAppName('damaged')], { packetId: nextPacketId(), senderId: SENDER.ADMIN, encrypted: true }), admin),
      24,
      5,
    );
    await runStepsOk('load a damaged packet', tap.service.singlePacket.createStoreLoaderFromBytes(damaged, { chunkSize }).asObservable());
    await expectStore(tap, 'after the damaged chunks', USED);
    const damagedCrc = SinglePacketStoreLoader.computeCRC(new SinglePacketSplitter({ chunkSize, pad: true }).chunk(damaged)) >>> 0;
    expectStatus(
      'POST /1024//83 of a damaged packet',
      await call('POST /1024//83', () => tap.service.singlePacket.executeSinglePacketInStore(damagedCrc)),
      ResultCode.BAD_REQUEST,
    );
    await expectStore(tap, 'after the refused execute', EMPTY);
    await conn.close();
    await expectAppName('store-check', name, 'set by the stored packet, not by the wrong-CRC execute nor the damaged one');

    // The client's own path: createStoreLoader(packet, options, credentials) encrypts with the credentials, sets
    // the sender id of "admin", loads the chunks and (execute: true) executes with the CRC it computed.
    const conn2 = await open({ label: 'loader' });
    const viaLoader = 'via-createStoreLoader';
    const model = commandModel([calls.putAppName(viaLoader)], { packetId: nextPacketId(), senderId: SENDER.ANONYMOUS, encrypted: true });
    await runStepsOk(
      'tap.service.singlePacket.createStoreLoader(packet, {execute: true}, admin credentials)',
      conn2.tap.service.singlePacket.createStoreLoader(model, { execute: true, chunkSize }, admin).asObservable(),
    );
    assert.equal(model.header.senderId, SENDER.ADMIN);
    appName = viaLoader;
    await expectStore(conn2.tap, 'after the loader executed', EMPTY);
    await conn2.close();
    await expectAppName('loader-check', viaLoader, 'set by the packet the client loaded and executed');
  });

  // -------------------------------------------------------------------------------------------------------------
  // 4. the packetIds survive a restart

  test('after a restart on the same --state the last accepted packet is still refused (0x81), a newer one runs', async () => {
    const conn = await open({ label: 'pre-restart' });
    const last = encodeSigned(
      commandModel([calls.putAppName('before-restart')], { packetId: nextPacketId(), senderId: SENDER.ADMIN, encrypted: true }),
      admin,
    );
    expectItems('the last packet before the restart', await writeAndExecuteBytes(conn.tap, 'last', last), [{ status: ResultCode.OK }]);
    await conn.close();
    await device.stop();
    await start();

    const conn2 = await open({ label: 'post-restart' });
    expectStatus('the last accepted packet again, after the restart', await writeAndExecuteBytes(conn2.tap, 'replay', last), ResultCode.UNAUTHORIZED);
    const name = 'after-restart';
    const newer = encodeSigned(commandModel([calls.putAppName(name)], { packetId: nextPacketId(), senderId: SENDER.ADMIN, encrypted: true }), admin);
    expectItems('a newer packet after the restart', await writeAndExecuteBytes(conn2.tap, 'newer', newer), [{ status: ResultCode.OK }]);
    appName = name;
    await conn2.close();
    await expectAppName('restart-check', name, 'set by the newer packet');
  });

  // -------------------------------------------------------------------------------------------------------------
  // 5. the firmware update

  test('firmware update by tap.firmwareUpdater: a 64 KiB admin-signed image lands in firmware.bin; plain, non-admin, wrong-CRC and replayed ones do not', async () => {
    const firmwarePath = path.join(stateDir, 'firmware.bin');
    const image = pseudoRandomBytes(FIRMWARE_SIZE, 0xc0ffee);
    const imageCrc = crcHex(image);
    const fwModel = (img, options) => packetModel(firmwareData(img), SinglePacket.PacketType.TARGET_FW_UPDATE, options);
    const firmwareLines = () => [...stderr.matchAll(FIRMWARE_LINE)].map((m) => m[0]);

    /** Run the client's firmware updater on a fresh anonymous connection; returns { events, error, conn counts }. */
    async function update(label, file) {
      const conn = await open({ label });
      assert.equal(conn.tap.encryption.isStarted, false);
      const result = await runSteps(conn.tap.firmwareUpdater.apply(file));
      const encrypted = conn.tap.encryption.isStarted;
      if (result.error) {
        const state = await storeState(conn.tap, `${label}: after the update`);
        if (encrypted) conn.tap.encryption.stop();
        await conn.close();
        return { ...result, encrypted, state };
      }
      // Installed: the device restarts into the new firmware (§11.5), its link closed after
      // the answer; the store is read on a new connection, as the updater's reconnect does.
      if (encrypted) conn.tap.encryption.stop();
      await conn.close().catch(() => {});
      const again = await open({ label: `${label}-reconnected` });
      const state = await storeState(again.tap, `${label}: after the update, reconnected`);
      await again.close();
      return { ...result, encrypted, state };
    }
    async function expectRefused(label, what, file, status) {
      const linesBefore = firmwareLines().length;
      const { events, error, state } = await update(label, file);
      const steps = events.map((e) => e.step).filter((s, i, a) => a.indexOf(s) === i);
      assert.ok(error, `${what}: the firmware updater must fail, it finished (steps ${steps.join(', ')})${wireLog()}${deviceLog()}`);
      const got = statusOfError(error);
      if (status !== undefined) {
        assert.equal(got, status, `${what}: POST /1024//83 must answer ${statusName(status)}: ${describeError(error)}${wireLog()}`);
      } else {
        assert.ok(got !== undefined && got >= 0x80, `${what}: POST /1024//83 must answer an error status: ${describeError(error)}${wireLog()}`);
      }
      assert.ok(steps.includes('apply'), `${what}: the chunks were loaded (steps ${steps.join(', ')}): ${describeError(error)}${wireLog()}`);
      assert.equal(state, EMPTY, `${what}: store EMPTY after the refused execute, got ${STATE_NAMES[state]}${wireLog()}`);
      assert.equal(firmwareLines().length, linesBefore, `${what}: no firmware line on stderr${deviceLog()}`);
    }
    const expectFirmwareFile = (what, expected) => {
      if (expected === null) {
        assert.equal(existsSync(firmwarePath), false, `${what}: ${firmwarePath} must not exist${deviceLog()}`);
      } else {
        assert.ok(existsSync(firmwarePath), `${what}: ${firmwarePath} missing${deviceLog()}`);
        const written = readFileSync(firmwarePath);
        assert.equal(written.length, expected.length, `${what}: firmware.bin is ${written.length} bytes, expected ${expected.length}${deviceLog()}`);
        assert.ok(written.equals(Buffer.from(expected)), `${what}: firmware.bin differs from the image (CRC ${crcHex(written.subarray(0, written.length & ~3))} vs ${crcHex(expected)})${deviceLog()}`);
      }
    };
    expectFirmwareFile('before any update', null);

    // Refused: plain (whatever sender it claims), signed by a user without every right (a real key), the client's blank key.
    await expectRefused('fw-plain', 'a plain firmware packet claiming admin', encodePlain(fwModel(image, { packetId: nextPacketId(), senderId: SENDER.ADMIN, encrypted: false })));
    await expectRefused(
      'fw-user',
      'a firmware packet signed by a user without every right',
      encodeSigned(fwModel(image, { packetId: nextPacketId(), senderId: SENDER.USER, encrypted: true }), user),
    );
    await expectRefused(
      'fw-blank',
      'a firmware packet with the client\'s blank key ("IoTize")',
      EncryptedSinglePacketConverter.createWithBlankKey().encode(fwModel(image, { packetId: nextPacketId(), senderId: SENDER.IOTIZE, encrypted: true })),
    );
    expectFirmwareFile('after the refused packets', null);

    // The good file, first executed with a wrong CRC (loaded by the client's store loader, in an encrypted session).
    const file = encodeSigned(fwModel(image, { packetId: nextPacketId(), senderId: SENDER.ADMIN, encrypted: true }), admin);
    const fileCrc = SinglePacketStoreLoader.computeCRC(file) >>> 0;
    {
      const conn = await open({ label: 'fw-crc' });
      await call('tap.encryption.start()', () => conn.tap.encryption.start());
      await runStepsOk('load the firmware file', conn.tap.service.singlePacket.createStoreLoaderFromBytes(file).asObservable());
      await expectStore(conn.tap, 'firmware file loaded', USED);
      expectStatus(
        'POST /1024//83 of the firmware file with a wrong CRC',
        await call('POST /1024//83', () => conn.tap.service.singlePacket.executeSinglePacketInStore((fileCrc ^ 0x80000000) >>> 0)),
        ResultCode.NOT_ACCEPTABLE,
      );
      await expectStore(conn.tap, 'after the wrong CRC', EMPTY);
      conn.tap.encryption.stop();
      await conn.close();
    }
    expectFirmwareFile('after the wrong CRC', null);

    // The same file (its packetId not used up) through the client's firmware updater.
    const started = Date.now();
    const linesBefore = firmwareLines().length;
    const rebootsBefore = (stderr.match(/\] reboot$/gm) || []).length;
    const { events, error, encrypted, state } = await update('fw-good', file);
    const reboots = (stderr.match(/\] reboot$/gm) || []).length - rebootsBefore;
    assert.equal(reboots, 1, `the device restarts once into the new firmware${deviceLog()}`);
    if (error) assert.fail(`tap.firmwareUpdater.apply(file): ${describeError(error)}, status ${hexStatus(statusOfError(error))}${wireLog()}${deviceLog()}`);
    assert.equal(encrypted, true, 'the updater started encryption itself');
    const chunkEvents = events.filter((e) => e.step === SinglePacketStoreLoader.Step.loadPacketChunk);
    assert.equal(chunkEvents.length, Math.ceil(file.length / SinglePacketBuilder.MAX_PART_SIZE), 'one event per chunk');
    const finish = events.find((e) => e.step === 'finish');
    assert.ok(finish, `the updater reached its finish step (steps: ${[...new Set(events.map((e) => e.step))].join(', ')})`);
    assert.equal(finish.executeRequestTimeout, false, `POST /1024//83 was answered (not a timeout)${wireLog()}`);
    assert.equal(state, EMPTY, `store EMPTY after the update, got ${STATE_NAMES[state]}`);
    const deadline = Date.now() + 3000;
    while (!(existsSync(firmwarePath) && readFileSync(firmwarePath).length === FIRMWARE_SIZE) && Date.now() < deadline) await sleep(50);
    expectFirmwareFile('after the update', image);
    while (firmwareLines().length === linesBefore && Date.now() < deadline) await sleep(50);
    const lines = firmwareLines().slice(linesBefore);
    assert.deepEqual(lines, [`firmware image: ${FIRMWARE_SIZE} bytes, CRC ${imageCrc}`], `the device's stderr line for the image${deviceLog()}`);
    const elapsed = Date.now() - started;

    // Afterwards: the accepted file again (0x81) and a plain packet with another image leave firmware.bin alone.
    await expectRefused('fw-replay', 'the accepted firmware file again', file, ResultCode.UNAUTHORIZED);
    const other = pseudoRandomBytes(FIRMWARE_SIZE, 0xbad);
    await expectRefused('fw-plain2', 'a plain firmware packet with another image', encodePlain(fwModel(other, { packetId: nextPacketId(), senderId: SENDER.ADMIN, encrypted: false })));
    expectFirmwareFile('after the refused packets', image);
    // (the update itself: chunk count and time, for the report in verbose runs)
    if (process.env.LWM2M_INTEROP_VERBOSE) process.stderr.write(`[packets] firmware: ${chunkEvents.length} chunks in ${elapsed} ms\n`);
  });
});
