/**
 * What grpc-js logs lands in the broker's log (`routeGrpcLogs`): its own complaints, which a
 * client can set off on every call, once a minute per kind; the traces an operator turned on
 * with GRPC_TRACE, every one. Method: lines written through grpc-js's own `log`, as its code
 * and its `trace` write them, into a recording logger.
 */
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../common/clock.js';
import { recordingLogger } from '../../test/support/recording-logger.js';
import { routeGrpcLogs } from './server.js';

afterEach(() => {
  grpc.setLogger(console);
});

describe('routeGrpcLogs', () => {
  it('logs a complaint grpc-js repeats once, and every line of a trace, also those at error severity written in the same millisecond', () => {
    const sink = recordingLogger();
    routeGrpcLogs(sink, new ManualClock());
    for (let i = 0; i < 5; i++) grpc.experimental.log(grpc.logVerbosity.ERROR, `Metadata key "x!y${i}" contains illegal characters`);
    // As grpc-js's trace() formats a line: ISO time | version pid | tracer | text.
    const at = new Date(1_795_364_251_893).toISOString();
    for (let i = 0; i < 5; i++) grpc.experimental.log(grpc.logVerbosity.ERROR, `${at} | v1.12.0 4242 | server_call | Request to /runnel.v1.LogService/Fetch ended with status ${i}`);
    expect(sink.calls.filter((call) => String(call.fields.detail).startsWith('Metadata key'))).toHaveLength(1);
    expect(sink.calls.filter((call) => String(call.fields.detail).startsWith(at)).map((call) => String(call.fields.detail).at(-1))).toEqual(['0', '1', '2', '3', '4']);
  });
});
