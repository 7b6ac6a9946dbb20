import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { BrokerError } from '../errors/index.js';
import { errorFromGrpc, errorFromPartitionError, isTransportFailure, reasonForStatus } from './errors.js';

function serviceError(code: grpc.status, details: string, trailers: Record<string, string> = {}): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  for (const [key, value] of Object.entries(trailers)) metadata.set(key, value);
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata });
}

describe('errorFromGrpc', () => {
  it('rebuilds the broker’s error from the reason and details in trailing metadata', () => {
    const error = errorFromGrpc(
      serviceError(grpc.status.NOT_FOUND, 'topic orders does not exist', {
        'runnel-reason': 'TOPIC_NOT_FOUND',
        'runnel-retriable': 'false',
        'runnel-details': JSON.stringify({ topic: 'orders', partition: 3, known: 2 }),
      }),
    );
    expect(error).toBeInstanceOf(BrokerError);
    expect(error).toMatchObject({ reason: 'TOPIC_NOT_FOUND', retriable: false, topic: 'orders', partition: 3, message: 'topic orders does not exist' });
    expect(error.details).toMatchObject({ known: 2, grpcCode: grpc.status.NOT_FOUND });
  });

  it('takes retriable from the reason catalog, not from the status', () => {
    const error = errorFromGrpc(serviceError(grpc.status.DEADLINE_EXCEEDED, 'acks late', { 'runnel-reason': 'ACK_TIMEOUT' }));
    expect(error).toMatchObject({ reason: 'ACK_TIMEOUT', retriable: true });
  });

  it.each([
    [grpc.status.UNAVAILABLE, 'BROKER_UNAVAILABLE', true],
    [grpc.status.DEADLINE_EXCEEDED, 'REQUEST_TIMED_OUT', true],
    [grpc.status.RESOURCE_EXHAUSTED, 'LIMIT_REACHED', true],
    [grpc.status.INTERNAL, 'INTERNAL_ERROR', false],
    [grpc.status.CANCELLED, 'INTERNAL_ERROR', false],
    [grpc.status.UNKNOWN, 'INTERNAL_ERROR', false],
  ] as const)('maps status %i without a reason to %s', (code, reason, retriable) => {
    expect(reasonForStatus(code)).toBe(reason);
    expect(errorFromGrpc(serviceError(code, 'no reason'))).toMatchObject({ reason, retriable });
  });

  it('maps an unknown reason by status and keeps it in the details', () => {
    const error = errorFromGrpc(serviceError(grpc.status.UNAVAILABLE, 'new', { 'runnel-reason': 'SOMETHING_NEW' }));
    expect(error).toMatchObject({ reason: 'BROKER_UNAVAILABLE', retriable: true });
    expect(error.details.brokerReason).toBe('SOMETHING_NEW');
  });

  it('survives details that are not JSON', () => {
    const error = errorFromGrpc(serviceError(grpc.status.INVALID_ARGUMENT, 'bad', { 'runnel-reason': 'INVALID_REQUEST', 'runnel-details': '{nope' }));
    expect(error).toMatchObject({ reason: 'INVALID_REQUEST' });
    expect(error.details.rawDetails).toBe('{nope');
  });

  it('passes a BrokerError through and wraps anything else as INTERNAL_ERROR', () => {
    const original = new BrokerError('DISK_FULL', 'full');
    expect(errorFromGrpc(original)).toBe(original);
    expect(errorFromGrpc(new TypeError('boom'))).toMatchObject({ reason: 'INTERNAL_ERROR', message: 'boom' });
  });

  it('tells failures below the broker (no reason) from the broker’s own', () => {
    expect(isTransportFailure(serviceError(grpc.status.INTERNAL, 'Received RST_STREAM with code 2'))).toBe(true);
    expect(isTransportFailure(errorFromGrpc(serviceError(grpc.status.UNAVAILABLE, 'Connection dropped')))).toBe(true);
    expect(isTransportFailure(serviceError(grpc.status.UNAVAILABLE, 'closing', { 'runnel-reason': 'SHUTTING_DOWN' }))).toBe(false);
  });
});

describe('errorFromPartitionError', () => {
  it('maps a per-partition Error message to the same BrokerError', () => {
    const error = errorFromPartitionError({ reason: 'OUT_OF_ORDER_SEQUENCE', message: 'gap', retriable: false }, 't', 2);
    expect(error).toMatchObject({ reason: 'OUT_OF_ORDER_SEQUENCE', retriable: false, topic: 't', partition: 2, message: 'gap' });
  });

  it('maps an unknown per-partition reason by its retriable flag', () => {
    expect(errorFromPartitionError({ reason: 'NEWER', message: 'm', retriable: true }, 't', 0)).toMatchObject({ reason: 'BROKER_UNAVAILABLE' });
    expect(errorFromPartitionError({ reason: 'NEWER', message: 'm', retriable: false }, 't', 0)).toMatchObject({ reason: 'INTERNAL_ERROR' });
  });
});
