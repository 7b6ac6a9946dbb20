/**
 * Transport baseline for the broker benches (STYLE H14): how fast bare grpc-js moves bytes
 * between two processes over loopback on this machine, with nothing of Runnel in between.
 * Broker figures are compared with it (broker-produce / broker-consume print both).
 *
 * Question: MB/s of (a) a client-streaming call whose server discards 1 MiB messages (the
 * upload ceiling for ProduceStream) and (b) a server-streaming call sending 1 MiB messages
 * (the download ceiling for Subscribe). Both ends use CHANNEL_OPTIONS from
 * dist/protocol/grpc.js; with `--widen-window` the server also raises its HTTP/2 receive
 * window to 16 MiB the way src/server/server.ts does (copied here: grpc-js 1.14.7 internals).
 *
 *   node bench/transport-baseline.mjs server [--widen-window]     # prints {"port":N}
 *   node bench/transport-baseline.mjs upload   127.0.0.1:N BYTES  # prints {"bytes","seconds"}
 *   node bench/transport-baseline.mjs download 127.0.0.1:N BYTES
 *   node bench/transport-baseline.mjs standalone [BYTES]          # both, server in-process child
 *
 * The server also relays Publish (client-streaming) messages to Relay (server-streaming)
 * calls: broker-latency-client.mjs uses that as the latency baseline.
 *
 * Plain .mjs on compiled JS: nothing here goes through tsx.
 */
import * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { CHANNEL_OPTIONS } from '../dist/protocol/grpc.js';

const MiB = 1024 * 1024;
const identity = (buffer) => buffer;
/** A raw-bytes method of the bench service (messages pass through unserialized). */
const method = (name, requestStream, responseStream) => ({
  path: `/bench.Transport/${name}`,
  requestStream,
  responseStream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
const SERVICE = {
  upload: method('Upload', true, false),
  download: method('Download', false, true),
  // Latency baseline (broker-latency.ts): messages of Publish calls are forwarded as they
  // arrive to every open Relay call, the broker's produce → subscribe path without storage.
  publish: method('Publish', true, false),
  relay: method('Relay', false, true),
};
export { SERVICE as TRANSPORT_SERVICE };
const RECEIVE_WINDOW_BYTES = 16 * MiB;

function u64(value) {
  const buffer = Buffer.alloc(8);
  buffer.writeBigUInt64BE(BigInt(value));
  return buffer;
}

async function serve(widenWindow) {
  const server = new grpc.Server({ ...CHANNEL_OPTIONS });
  const relays = new Set();
  server.addService(SERVICE, {
    publish(call, callback) {
      call.on('data', (message) => {
        for (const relay of relays) relay.write(message);
      });
      call.on('end', () => callback(null, u64(0)));
      call.on('error', () => undefined);
    },
    relay(call) {
      relays.add(call);
      call.on('cancelled', () => relays.delete(call));
      call.on('error', () => relays.delete(call));
      call.write(Buffer.alloc(0)); // "subscribed"
    },
    upload(call, callback) {
      let bytes = 0;
      call.on('data', (message) => {
        bytes += message.length;
      });
      call.on('end', () => callback(null, u64(bytes)));
      call.on('error', () => undefined);
    },
    download(call) {
      writeChunks(call, Number(call.request.readBigUInt64BE(0)), () => call.cancelled);
    },
  });
  if (widenWindow) {
    // As src/server/server.ts widenStreamWindow: before bind.
    server.commonServerOptions.settings = { ...server.commonServerOptions.settings, initialWindowSize: RECEIVE_WINDOW_BYTES };
  }
  const port = await new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  if (widenWindow) {
    // As widenSessionWindows: after bind.
    for (const http2Server of server.http2Servers.keys()) {
      http2Server.on('session', (session) => {
        try {
          session.setLocalWindowSize(RECEIVE_WINDOW_BYTES);
        } catch {
          // closing
        }
      });
    }
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.on('SIGTERM', () => {
    server.forceShutdown();
    process.exit(0); // a relay stream left open by a killed client must not keep the process alive
  });
}

/** Writes `total` bytes to `stream` in 1 MiB messages, waiting on 'drain' as HTTP/2 asks, then ends it. */
function writeChunks(stream, total, isStopped) {
  const chunk = Buffer.alloc(MiB, 0x61);
  let sent = 0;
  const pump = () => {
    while (sent < total && !isStopped()) {
      const length = Math.min(MiB, total - sent);
      sent += length;
      if (!stream.write(length === MiB ? chunk : chunk.subarray(0, length))) {
        stream.once('drain', pump);
        return;
      }
    }
    stream.end();
  };
  pump();
}

function makeClient(address) {
  const Client = grpc.makeGenericClientConstructor(SERVICE, 'Transport');
  return new Client(address, grpc.credentials.createInsecure(), { ...CHANNEL_OPTIONS });
}

async function waitReady(client) {
  await new Promise((resolve, reject) => client.waitForReady(Date.now() + 10_000, (error) => (error ? reject(error) : resolve())));
}

/** Client-streaming upload of `total` bytes in 1 MiB messages, honouring back-pressure. */
async function upload(address, total) {
  const client = makeClient(address);
  await waitReady(client);
  const start = process.hrtime.bigint();
  const received = await new Promise((resolve, reject) => {
    const call = client.upload((error, reply) => (error ? reject(error) : resolve(Number(reply.readBigUInt64BE(0)))));
    writeChunks(call, total, () => false);
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  client.close();
  return { bytes: received, seconds };
}

async function download(address, total) {
  const client = makeClient(address);
  await waitReady(client);
  const start = process.hrtime.bigint();
  const received = await new Promise((resolve, reject) => {
    let bytes = 0;
    const call = client.download(u64(total));
    call.on('data', (message) => {
      bytes += message.length;
    });
    call.on('end', () => resolve(bytes));
    call.on('error', reject);
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  client.close();
  return { bytes: received, seconds };
}

async function standalone(total) {
  for (const flag of ['--default-window', '--widen-window']) {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'server', flag], { stdio: ['ignore', 'pipe', 'inherit'] });
    const { port } = await new Promise((resolve) => createInterface({ input: child.stdout }).once('line', (line) => resolve(JSON.parse(line))));
    const address = `127.0.0.1:${port}`;
    const up = await upload(address, total);
    const down = await download(address, total);
    console.log(`${flag}: upload ${(up.bytes / 1e6 / up.seconds).toFixed(0)} MB/s, download ${(down.bytes / 1e6 / down.seconds).toFixed(0)} MB/s`);
    child.kill('SIGTERM');
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (process.argv[1] !== fileURLToPath(import.meta.url)) {
  // imported (broker-latency-client.mjs uses TRANSPORT_SERVICE): no command line
} else if (mode === 'server') {
  await serve(rest.includes('--widen-window'));
} else if (mode === 'upload' || mode === 'download') {
  const result = await (mode === 'upload' ? upload : download)(rest[0], Number(rest[1]));
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else if (mode === 'standalone') {
  await standalone(Number(rest[0] ?? 512 * MiB));
} else {
  console.error('usage: transport-baseline.mjs server [--widen-window] | upload ADDR BYTES | download ADDR BYTES | standalone [BYTES]');
  process.exit(2);
}
