/**
 * broker-profile (STYLE H14): where the broker's CPU goes in one broker bench scenario.
 * Starts the compiled broker, runs one measured client exactly as broker-produce /
 * broker-consume / broker-latency do, and profiles the broker process:
 *
 * - `--tool perf` (default): Linux `perf record -e cpu-clock -g` on every thread of the
 *   broker (node runs with --perf-basic-prof-only-functions so JS frames have names). It
 *   samples CPU time, so it stays truthful on a loaded machine, and it sees the kernel
 *   (page-cache copies, TCP) and the libuv pool and V8 GC threads, which --cpu-prof cannot.
 *   Prints CPU per thread kind and per area, and the top leaf symbols.
 * - `--tool cpuprof`: `node --cpu-prof` (main thread, JS only; samples wall time, so on a
 *   busy machine descheduled time lands on whatever ran next). Prints self time per area and
 *   the top functions; `--keep` keeps the .cpuprofile for DevTools / speedscope.
 *
 *   npm run build && node --import tsx bench/broker-profile.ts --scenario produce-100|produce-1k|always-100|consume|consume-4m|latency
 *     [--tool perf|cpuprof] [--target broker|client] [--trace-gc] [--broker-node-flags 'max-semi-space-size=64'] [--interval-us 1000] [--seconds 4] [--keep]
 *
 * `--target client` (perf only; produce and consume scenarios) profiles the measured client
 * process instead: what limits a run when the broker is not saturated.
 *   node --import tsx bench/broker-profile.ts --summarize FILE.cpuprofile   # summarize an existing profile
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { benchDataRoot, fmt, freshDataDir, printHeader, removeDir, repoRoot } from './common.js';
import { ensureBuilt, MiB, parseFlags, runClient, spawnJsonChild, startBroker, threadCpuDelta, threadCpuSeconds } from './broker-support.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function area(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle';
  if (name === '(program)') return 'program (native, unattributed)';
  if (url.includes('@grpc/grpc-js')) return 'grpc-js';
  if (url.includes('protobufjs') || url.includes('@grpc/proto-loader')) return 'protobufjs';
  if (url.includes('/dist/storage/')) return 'runnel storage';
  if (url.includes('/dist/protocol/')) return 'runnel protocol';
  if (url.includes('/dist/server/') || url.includes('/dist/broker/')) return 'runnel server/broker';
  if (url.includes('/dist/')) return 'runnel other';
  if (url.startsWith('node:internal/http2') || url.startsWith('node:http2')) return 'node http2';
  if (url.startsWith('node:internal/fs') || url.startsWith('node:fs')) return 'node fs';
  if (url.startsWith('node:internal/stream') || url.startsWith('node:stream') || url.startsWith('node:internal/streams')) return 'node streams';
  if (url.startsWith('node:')) return 'node other';
  if (url.includes('node_modules')) return 'other dependencies';
  return url === '' ? 'native / builtins' : 'other';
}

export function summarizeProfile(path: string, top = 25): string[] {
  const profile = JSON.parse(fs.readFileSync(path, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  for (let index = 0; index < profile.samples.length; index++) {
    const id = profile.samples[index] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
  }
  const totalUs = profile.endTime - profile.startTime;
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const shortUrl = url.replace(/^.*\/node_modules\//, '').replace(/^.*\/work\/main\//, '').replace(/^file:\/\//, '');
    const key = `${functionName || '(anonymous)'} ${shortUrl}${shortUrl ? `:${lineNumber + 1}` : ''}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const areaName = area(url, functionName);
    byArea.set(areaName, (byArea.get(areaName) ?? 0) + us);
    if (functionName !== '(idle)') busyUs += us;
  }
  const lines = [`profile ${path}: ${fmt(totalUs / 1e6, 2)} s wall, ${fmt(busyUs / 1e6, 2)} s busy (not idle) on the main thread`];
  lines.push('by area (self time, % of busy):');
  for (const [name, us] of [...byArea].sort((a, b) => b[1] - a[1])) {
    if (name === 'idle') continue;
    lines.push(`  ${fmt((us / busyUs) * 100, 1).padStart(5)} %  ${fmt(us / 1000).padStart(6)} ms  ${name}`);
  }
  lines.push(`top ${top} functions (self time, % of busy):`);
  for (const [name, us] of [...byFunction].filter(([name]) => !name.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`  ${fmt((us / busyUs) * 100, 1).padStart(5)} %  ${fmt(us / 1000).padStart(6)} ms  ${name}`);
  }
  return lines;
}

/** Where a perf sample's CPU went: the thread kind and the area of its leaf frame (and stack). */
function classifyPerfSample(frames: { sym: string; dso: string }[], isMainThread: boolean): { thread: string; area: string; leaf: string } {
  const stack = frames.map((frame) => frame.sym).join(' ');
  const leaf = frames[0] ?? { sym: '?', dso: '?' };
  const isPool = / worker$| worker /.test(` ${frames.map((frame) => frame.sym).join(' ')} `) && stack.includes('start_thread');
  const thread = isMainThread ? 'main thread' : isPool ? 'libuv pool (fs)' : 'V8 helper threads (GC, compiler)';
  const isKernel = leaf.dso.includes('kernel');
  let area: string;
  if (isKernel) {
    if (stack.includes('generic_perform_write')) area = 'kernel: copy into page cache (log write)';
    else if (/tcp_|sock_|skb_|__sys_sendto|__sys_recvfrom|sock_read|sock_write|net_rx|__netif|ip_finish|loopback/.test(stack)) area = 'kernel: TCP loopback (gRPC)';
    else if (/filemap_read|copy_page_to_iter|_copy_to_iter/.test(stack) && /vfs_read|ksys_pread|__x64_sys_pread/.test(stack)) area = 'kernel: copy from page cache (log read)';
    else if (/fdatasync|file_write_and_wait|jbd2|ext4_sync_file/.test(stack)) area = 'kernel: fdatasync';
    else if (/exc_page_fault|do_anonymous_page|clear_page/.test(stack)) area = 'kernel: page faults (fresh memory)';
    else if (/futex|schedule|finish_task_switch|epoll/.test(stack)) area = 'kernel: scheduling, futex, epoll';
    else area = 'kernel: other';
  } else if (/v8::internal::.*(Mark|Sweep|Scaveng|Evacuat|Compact|Heap::|GCTracer|MemoryAllocator|Marking)/.test(leaf.sym) || /v8::internal::(Heap::CollectGarbage|ScavengerCollector|MarkCompactCollector)/.test(stack)) {
    area = 'V8 garbage collection';
  } else if (leaf.dso.includes('crc32')) area = 'CRC-32C (@node-rs/crc32)';
  else if (/memmove|memcpy|memset/.test(leaf.sym)) area = 'libc memcpy/memset';
  else if (leaf.sym.startsWith('JS:') || leaf.sym.startsWith('Builtin:') || leaf.dso.includes('JIT') || leaf.dso.startsWith('perf-')) {
    const text = leaf.sym;
    if (text.includes('@grpc/grpc-js')) area = 'JS: grpc-js';
    else if (text.includes('protobufjs') || text.includes('proto-loader')) area = 'JS: protobufjs';
    else if (text.includes('/dist/storage/')) area = 'JS: runnel storage';
    else if (text.includes('/dist/protocol/')) area = 'JS: runnel protocol';
    else if (text.includes('/dist/client/')) area = 'JS: runnel client';
    else if (text.includes('/dist/')) area = 'JS: runnel server/broker/other';
    else if (text.includes('node:internal/http2') || text.includes('node:http2')) area = 'JS: node http2';
    else if (text.includes('node:')) area = 'JS: node core (streams, timers, …)';
    else area = 'JS: other';
  } else if (leaf.sym.startsWith('Builtins_') || leaf.sym.startsWith('v8::') || leaf.dso.includes('node')) {
    area = /nghttp2|node::http2/.test(stack) ? 'node/nghttp2 native (HTTP/2 framing)' : 'V8/node runtime (builtins, ICs, runtime calls)';
  } else area = `other (${leaf.dso})`;
  return { thread, area, leaf: `${leaf.sym.slice(0, 110)} [${leaf.dso.replace(/^.*\//, '')}]` };
}

/** Summarizes a perf.data of one node process (its main thread is the thread whose tid is the pid). */
function summarizePerf(dataPath: string, what: string, top = 25): string[] {
  const script = spawnSync('perf', ['script', '-i', dataPath, '-F', 'pid,tid,ip,sym,dso'], { encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024 });
  const byThread = new Map<string, number>();
  const byArea = new Map<string, number>();
  const byLeaf = new Map<string, number>();
  let total = 0;
  const flush = (pid: number, tid: number, frames: { sym: string; dso: string }[]): void => {
    if (frames.length === 0) return;
    const { thread, area, leaf } = classifyPerfSample(frames, tid === pid);
    total++;
    byThread.set(thread, (byThread.get(thread) ?? 0) + 1);
    byArea.set(area, (byArea.get(area) ?? 0) + 1);
    byLeaf.set(leaf, (byLeaf.get(leaf) ?? 0) + 1);
  };
  let pid = -1;
  let tid = -1;
  let frames: { sym: string; dso: string }[] = [];
  for (const line of script.stdout.split('\n')) {
    const header = /^\s*(\d+)\/(\d+)\s*$/.exec(line);
    if (header !== null) {
      flush(pid, tid, frames);
      pid = Number(header[1]);
      tid = Number(header[2]);
      frames = [];
      continue;
    }
    const frame = /^\s+[0-9a-f]+\s+(.*)\s+\((.*)\)\s*$/.exec(line);
    if (frame !== null) frames.push({ sym: (frame[1] as string).replace(/\+0x[0-9a-f]+$/, ''), dso: frame[2] as string });
  }
  flush(pid, tid, frames);
  const table = (title: string, map: Map<string, number>, limit = 100): string[] => [
    title,
    ...[...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, count]) => `  ${fmt((count / total) * 100, 1).padStart(5)} %  ${name}`),
  ];
  return [
    `perf: ${fmt(total)} cpu-clock samples of ${what} (all threads)`,
    ...table('by thread:', byThread),
    ...table('by area (leaf frame, kernel split by call stack):', byArea),
    ...table(`top ${top} leaf symbols:`, byLeaf, top),
  ];
}

/**
 * Runs a measured client under `perf record` (for --target client): the client's own CPU,
 * all threads. Resolves with its JSON result and summary lines.
 */
async function runClientUnderPerf<T>(script: string, args: string[], perfData: string): Promise<{ result: T; lines: string[] }> {
  const child = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '1999', '-g', '-o', perfData, '--', process.execPath, '--perf-basic-prof-only-functions', join(repoRoot, 'bench', script), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`${script} under perf exited with ${String(code)}`);
  const result = JSON.parse(stdout.trim().split('\n').pop() as string) as T;
  const lines = summarizePerf(perfData, `the ${script} process`);
  // The JIT map node wrote for --perf-basic-prof-only-functions: /tmp/perf-<node pid>.map.
  const pids = new Set(
    spawnSync('perf', ['script', '-i', perfData, '-F', 'comm,pid'], { encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024 })
      .stdout.split('\n')
      .map((line) => /^\s*node\s+(\d+)\s*$/.exec(line)?.[1])
      .filter((pid): pid is string => pid !== undefined),
  );
  for (const pid of pids) fs.rmSync(`/tmp/perf-${pid}.map`, { force: true });
  return { result, lines };
}

async function profileScenario(scenario: string, seconds: number, keep: boolean, tool: 'perf' | 'cpuprof', target: 'broker' | 'client'): Promise<void> {
  ensureBuilt();
  const dataDir = freshDataDir('broker-profile');
  const profileDir = join(dataDir, 'profile');
  const perfData = join(dataDir, 'perf.data');
  printHeader('broker-profile', `Broker CPU profile (${tool}) during ${scenario}.`, dataDir, { scenario, seconds, tool });
  // --broker-node-flags "max-semi-space-size=64 …": extra node/V8 flags for the broker, without
  // their leading dashes (experiments).
  const brokerNodeArgs = flags['broker-node-flags']?.split(' ').filter((arg) => arg.length > 0).map((arg) => `--${arg}`) ?? [];
  // --trace-gc: V8 prints one line per GC with its kind and reason; counted per kind/reason.
  const gcCounts = new Map<string, { count: number; ms: number }>();
  /** When each major GC was reported, to attribute them to the scenario's phases. */
  const majorGcTimes: number[] = [];
  const phases: { name: string; start: number; end: number }[] = [];
  const phase = async <T>(name: string, action: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    try {
      return await action();
    } finally {
      phases.push({ name, start, end: Date.now() });
    }
  };
  const traceGc = flags['trace-gc'] === 'true';
  const onLine = (line: string): void => {
    const match = /ms: (Scavenge|Mark-Compact \(reduce\)|Mark-Compact|Mark-sweep|Minor Mark-Compact)\b.*?, ([\d.]+) \/ [\d.]+ ms .*current mu = [\d.]+\) ([^;]+);/.exec(line);
    if (match === null) return;
    const key = `${match[1]} (${match[3]})`;
    if ((match[1] as string).startsWith('Mark')) majorGcTimes.push(Date.now());
    const slot = gcCounts.get(key) ?? { count: 0, ms: 0 };
    slot.count++;
    slot.ms += Number(match[2]);
    gcCounts.set(key, slot);
  };
  const broker = await startBroker({
    dataDir: join(dataDir, 'broker'),
    flush: scenario === 'latency' ? 'always' : 'never',
    ...(traceGc ? { onLine } : {}),
    nodeArgs: (traceGc ? ['--trace-gc'] : []).concat(brokerNodeArgs, tool === 'perf' ? (target === 'broker' ? ['--perf-basic-prof-only-functions'] : []) : ['--cpu-prof', '--cpu-prof-interval', String(Number(flags['interval-us'] ?? 1000)), '--cpu-prof-dir', profileDir]),
  });
  const threadsBefore = threadCpuSeconds(broker.pid);
  let perf: ReturnType<typeof spawn> | undefined;
  const clientLines: string[] = [];
  /** The measured client: plain, or under perf with --target client. */
  const measured = async <T>(script: string, args: string[]): Promise<T> => {
    if (target === 'broker') return runClient<T>(script, args);
    const { result, lines } = await runClientUnderPerf<T>(script, args, join(dataDir, 'client-perf.data'));
    clientLines.splice(0, clientLines.length, ...lines);
    return result;
  };
  if (tool === 'perf' && target === 'broker') {
    perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '1999', '-g', '-p', String(broker.pid), '-o', perfData], { stdio: 'inherit' });
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  try {
    const produceArgs = (topic: string, recordBytes: number, topicFlush: string): string[] => [
      '--broker', broker.address,
      '--broker-pid', String(broker.pid),
      '--topic', topic,
      '--create-partitions', '1',
      '--topic-flush', topicFlush,
      '--record-bytes', String(recordBytes),
      '--seconds', String(seconds),
      '--warmup-seconds', '1',
      '--batch-bytes', String(MiB),
    ];
    if (scenario === 'produce-100' || scenario === 'produce-1k' || scenario === 'always-100') {
      const result = await phase('produce (1 s warm-up + measured)', () =>
        measured<{ recordsPerSec: number; valueMBps: number; records: number; brokerCpuSeconds: number }>(
          'broker-produce-client.mjs',
          produceArgs('profile', scenario === 'produce-1k' ? 1024 : 100, scenario === 'always-100' ? 'always' : 'never'),
        ),
      );
      console.log(`client: ${fmt(result.recordsPerSec)} records/s, ${fmt(result.valueMBps, 1)} MB/s, broker ${fmt((result.brokerCpuSeconds * 1e6) / result.records, 3)} µs/record`);
    } else if (scenario === 'consume' || scenario === 'consume-4m') {
      const records = 6_000_000;
      await phase('load (produce)', () => runClient('broker-produce-client.mjs', [...produceArgs('profile', 100, 'never'), '--records', String(records), '--warmup-seconds', '0']));
      for (let run = 0; run < (target === 'client' ? 1 : 3); run++) {
        const result = await phase(`consume ${run + 1}`, () => measured<{ recordsPerSec: number; records: number; brokerCpuSeconds: number }>('broker-consume-client.mjs', [
          '--broker', broker.address,
          '--broker-pid', String(broker.pid),
          '--topic', 'profile',
          '--partitions', '1',
          '--records', String(records),
          ...(scenario === 'consume-4m' ? ['--max-message-bytes', String(4 * MiB), '--partition-buffer-bytes', String(32 * MiB)] : []),
        ]));
        console.log(`client: ${fmt(result.recordsPerSec)} records/s, broker ${fmt((result.brokerCpuSeconds * 1e6) / result.records, 3)} µs/record (profile includes loading ${fmt(records)} records)`);
      }
    } else if (scenario === 'latency') {
      const rate = 10_000;
      const consumer = spawnJsonChild<{ ready: boolean }, { p50Ms: number; p99Ms: number; maxMs: number }>('broker-latency-client.mjs', [
        'consume', '--broker', broker.address, '--topic', 'profile', '--records', String(rate * seconds), '--warmup-records', String(rate),
      ]);
      await consumer.ready;
      await spawnJsonChild('broker-latency-client.mjs', ['produce', '--broker', broker.address, '--topic', 'profile', '--rate', String(rate), '--seconds', String(seconds), '--linger-ms', '0']).done;
      const result = await consumer.done;
      console.log(`client: p50 ${fmt(result.p50Ms, 2)} ms, p99 ${fmt(result.p99Ms, 2)} ms, max ${fmt(result.maxMs, 2)} ms`);
    } else {
      throw new Error(`unknown scenario ${scenario}`);
    }
    console.log(`broker CPU by thread over the scenario (incl. client start-up): ${threadCpuDelta(threadsBefore, threadCpuSeconds(broker.pid)).join(', ')}`);
  } finally {
    if (perf !== undefined) {
      const perfProcess = perf;
      perfProcess.kill('SIGINT');
      await new Promise((resolve) => perfProcess.once('exit', resolve));
    }
    await broker.stop();
  }
  for (const line of clientLines) console.log(line);
  if (traceGc) {
    console.log('broker GCs over the scenario (--trace-gc: kind (reason): count, main-thread pause total):');
    for (const [key, slot] of [...gcCounts].sort((a, b) => b[1].ms - a[1].ms)) console.log(`  ${key}: ${slot.count}, ${fmt(slot.ms, 1)} ms`);
    for (const { name, start, end } of phases) {
      const count = majorGcTimes.filter((at) => at >= start && at <= end).length;
      console.log(`  major GCs during ${name} (${fmt((end - start) / 1000, 2)} s): ${count}`);
    }
  }
  if (tool === 'perf' && target === 'broker') {
    // perf script resolves JS frames from /tmp/perf-<pid>.map (--perf-basic-prof-only-functions)
    // at report time: summarize first, then remove the map.
    for (const line of summarizePerf(perfData, 'the broker process')) console.log(line);
    if (keep) {
      fs.copyFileSync(perfData, join(benchDataKeep(), `broker-perf-${scenario}.data`));
      fs.copyFileSync(`/tmp/perf-${broker.pid}.map`, join(benchDataKeep(), `broker-perf-${scenario}.map`));
    }
    fs.rmSync(`/tmp/perf-${broker.pid}.map`, { force: true });
  }
  const profiles = fs.existsSync(profileDir) ? fs.readdirSync(profileDir).filter((name) => name.endsWith('.cpuprofile')) : [];
  for (const name of profiles) for (const line of summarizeProfile(join(profileDir, name))) console.log(line);
  if (keep && tool === 'cpuprof') {
    const kept = join(benchDataKeep(), `broker-profile-${scenario}.cpuprofile`);
    if (profiles[0] !== undefined) fs.copyFileSync(join(profileDir, profiles[0]), kept);
    console.log(`kept ${kept}`);
  }
  removeDir(dataDir);
}

/** Where `--keep` leaves profiles: .bench-data/ (gitignored). */
function benchDataKeep(): string {
  const dir = join(benchDataRoot, 'profiles');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

const flags = parseFlags(process.argv.slice(2));
if (flags.summarize !== undefined) {
  for (const line of summarizeProfile(flags.summarize, Number(flags.top ?? 25))) console.log(line);
} else {
  await profileScenario(
    flags.scenario ?? 'produce-100',
    Number(flags.seconds ?? 4),
    flags.keep === 'true',
    flags.tool === 'cpuprof' ? 'cpuprof' : 'perf',
    flags.target === 'client' ? 'client' : 'broker',
  );
}
