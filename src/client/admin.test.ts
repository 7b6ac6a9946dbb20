import { Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../common/index.js';
import type { Reason } from '../errors/index.js';
import { ErrorMetadata } from '../protocol/index.js';
import type { AdminServiceClient } from '../protocol/generated/runnel/v1/AdminService.js';
import { Admin } from './admin.js';
import { Connections } from './connections.js';
import { RETRY_DEFAULTS } from './retry.js';
import { settle } from './test-helpers.js';

/** A failed call as grpc-js hands it over: status, the broker's message, the reason in trailers. */
function brokerFailure(reason: Reason, code: GrpcStatus, message: string): ServiceError {
  const metadata = new Metadata();
  metadata.set(ErrorMetadata.reason, reason);
  metadata.set(ErrorMetadata.details, JSON.stringify({ operation: 'commit', path: '/data/meta' }));
  return Object.assign(new Error(`${code} ${message}`), { code, details: message, metadata });
}

type Callback = (error: ServiceError | null, response?: unknown) => void;

/**
 * An Admin over real Connections (the client's retry policy, on a manual clock) whose
 * AdminService stub answers every call with the next of `answers` (the last one repeats), and
 * counts the attempts per method.
 */
function adminAnswering(answers: (ServiceError | object)[]) {
  const clock = new ManualClock();
  const connections = new Connections({ brokers: ['127.0.0.1:7070'], clock, random: () => 0, retry: { ...RETRY_DEFAULTS }, requestTimeoutMs: 1_000 });
  const attempts = new Map<string, number>();
  let answerIndex = 0;
  const answer = (method: string) => (_request: unknown, _options: unknown, callback: Callback) => {
    attempts.set(method, (attempts.get(method) ?? 0) + 1);
    const next = answers[Math.min(answerIndex++, answers.length - 1)]!;
    queueMicrotask(() => (next instanceof Error ? callback(next as ServiceError) : callback(null, next)));
    return {};
  };
  const stub = {
    createTopic: answer('createTopic'),
    deleteTopic: answer('deleteTopic'),
    alterTopicConfigs: answer('alterTopicConfigs'),
    addPartitions: answer('addPartitions'),
  };
  connections.admin = () => stub as unknown as AdminServiceClient;
  return { admin: new Admin(connections), clock, attempts, connections };
}

/** What `promise` settled with after the callbacks queued now ran (no clock time passes); 'pending' if it did not. */
async function outcomeWithoutWaiting(promise: Promise<unknown>): Promise<unknown> {
  let outcome: unknown = 'pending';
  promise.then(
    (value) => (outcome = { value }),
    (error: unknown) => (outcome = error),
  );
  await settle();
  return outcome;
}

describe('Admin changes on a broker whose disk is full or failing', () => {
  it('fail at once with DISK_FULL after one attempt, instead of retrying for the retry budget', async () => {
    // DISK_FULL is retriable (a producer retries it while retention may free space), and admin
    // calls used to retry it for the client's 60 s: `runnel topic create` hung a minute.
    const { admin, attempts, connections } = adminAnswering([
      brokerFailure('DISK_FULL', GrpcStatus.RESOURCE_EXHAUSTED, 'disk full while trying to commit in the broker metadata (/data/meta); free space in the data directory and retry'),
    ]);
    const calls = {
      createTopic: admin.createTopic({ name: 't', partitions: 1 }),
      deleteTopic: admin.deleteTopic('t'),
      alterTopicConfigs: admin.alterTopicConfigs({ name: 't', set: { 'retention.ms': '1000' } }),
      addPartitions: admin.addPartitions({ name: 't', partitionCount: 2 }),
    };
    const outcomes = Object.entries(calls).map(([method, call]) => [method, outcomeWithoutWaiting(call)] as const);
    for (const [method, outcome] of outcomes) {
      expect(await outcome, method).toMatchObject({ reason: 'DISK_FULL', message: expect.stringContaining('disk full'), details: { path: '/data/meta' } });
      expect(attempts.get(method), method).toBe(1);
    }
    connections.close();
  });

  it('fail at once with STORAGE_ERROR, an I/O error of the broker\'s disk', async () => {
    const { admin, attempts, connections } = adminAnswering([brokerFailure('STORAGE_ERROR', GrpcStatus.UNAVAILABLE, 'I/O error while trying to commit in the broker metadata (/data/meta): EIO')]);
    expect(await outcomeWithoutWaiting(admin.createTopic({ name: 't' }))).toMatchObject({ reason: 'STORAGE_ERROR' });
    expect(attempts.get('createTopic')).toBe(1);
    connections.close();
  });

  it('still retry a broker that is unavailable for a moment', async () => {
    const { admin, attempts, clock, connections } = adminAnswering([brokerFailure('SHUTTING_DOWN', GrpcStatus.UNAVAILABLE, 'the broker is shutting down'), {}]);
    const deleted = admin.deleteTopic('t');
    expect(await outcomeWithoutWaiting(deleted)).toBe('pending');
    clock.advance(RETRY_DEFAULTS.backoffMsMin);
    expect(await outcomeWithoutWaiting(deleted)).toEqual({ value: undefined });
    expect(attempts.get('deleteTopic')).toBe(2);
    connections.close();
  });
});

describe('Admin.listOffsets', () => {
  it('tells onRetry of each failure it will retry, before the retry', async () => {
    // `runnel consume` started while the broker restarts says so on stderr from this report.
    const { admin, clock, connections } = adminAnswering([]);
    const answers: (ServiceError | object)[] = [
      brokerFailure('SHUTTING_DOWN', GrpcStatus.UNAVAILABLE, 'the broker is shutting down'),
      { partitions: [{ partition: 0, offset: '5', timestampMs: '-1', error: null }] },
    ];
    let attemptCount = 0;
    const listOffsets = (_request: unknown, _options: unknown, callback: Callback) => {
      const next = answers[Math.min(attemptCount++, answers.length - 1)]!;
      queueMicrotask(() => (next instanceof Error ? callback(next as ServiceError) : callback(null, next)));
      return {};
    };
    connections.log = () => ({ listOffsets }) as unknown as ReturnType<Connections['log']>;
    const retried: Reason[] = [];
    const offsets = admin.listOffsets({ topic: 't', spec: 'latest', onRetry: (error) => retried.push(error.reason) });
    expect(await outcomeWithoutWaiting(offsets)).toBe('pending');
    expect(retried).toEqual(['SHUTTING_DOWN']);
    clock.advance(RETRY_DEFAULTS.backoffMsMin);
    expect(await outcomeWithoutWaiting(offsets)).toEqual({ value: [{ partition: 0, offset: 5, timestamp: -1 }] });
    expect(retried).toEqual(['SHUTTING_DOWN']);
    connections.close();
  });
});
