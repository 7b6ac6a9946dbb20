/**
 * A broker's storage under a low descriptor limit: thousands of partitions written, rolled and
 * read at the same moment stay within `openSegmentFilesMax` segment files plus
 * `limits.storageFileOpsInFlightMax` short-lived ones, instead of one descriptor per partition
 * at work (which ran out of descriptors, EMFILE, under `ulimit -n 400` with 2,000 partitions).
 *
 * Method: write 600 clean partitions (test/support/partition-fixture.ts), then run
 * test/support/descriptor-burst-child.ts under `ulimit -n 256` with a segment file cache of 64.
 * It appends to every partition at once (each turns dirty and rolls), reads every partition
 * from offset 0 after a clean restart, and seeks each by time, and reports failures and the
 * most descriptors it saw open.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { limits } from '../../src/config/limits.js';
import { makeTempDir } from '../../src/storage/test-helpers.js';
import { writePartitionFixture } from '../support/partition-fixture.js';

const CHILD_SCRIPT = fileURLToPath(new URL('../support/descriptor-burst-child.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PARTITIONS = 600;
const DESCRIPTOR_LIMIT = 256;
const OPEN_FILES_MAX = 64;

interface BurstReport {
  burst: string;
  partitions: number;
  failed: number;
  firstError: string | null;
  descriptorsMax: number;
}

const children = new Set<ChildProcess>();
const cleanups: (() => void)[] = [];

afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function runUnderLimit(dataDir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // `exec` makes node the process bash started, so the PID we hold is the child's own.
  const child = spawn('bash', ['-c', `ulimit -n ${DESCRIPTOR_LIMIT} && exec "$0" --import tsx "$@"`, process.execPath, CHILD_SCRIPT, dataDir, String(OPEN_FILES_MAX)], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('storage under a descriptor limit', () => {
  it(`writes, rolls and reads ${PARTITIONS} partitions at once under ulimit -n ${DESCRIPTOR_LIMIT}`, async () => {
    const temp = makeTempDir('runnel-descriptors-');
    cleanups.push(temp.remove);
    writePartitionFixture({ dataDir: temp.dir, topic: 'burst', partitionCount: PARTITIONS, segmentsPerPartition: 1 });

    const { code, stdout, stderr } = await runUnderLimit(temp.dir);
    const reports = stdout
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as BurstReport);
    expect(reports.map((report) => report.burst), stderr).toEqual(['append', 'read', 'seek by time']);
    for (const report of reports) {
      expect(report, `burst "${report.burst}" failed`).toMatchObject({ partitions: PARTITIONS, failed: 0, firstError: null });
      // The child's own descriptors (node, pipes, the event loop) come on top of storage's.
      expect(report.descriptorsMax).toBeGreaterThan(0);
      expect(report.descriptorsMax).toBeLessThanOrEqual(OPEN_FILES_MAX + limits.storageFileOpsInFlightMax + 48);
    }
    expect(code, stderr).toBe(0);
  }, 180_000);
});
