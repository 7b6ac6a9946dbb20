/**
 * `SignalStop`'s timing, on a hand-moved clock with a fake server and broker: how long the
 * server's calls in flight may run at a stop (the grace) against the bound on the whole stop.
 * The process-level behaviour (exit status, lines, a hung disk) is in
 * test/integration/broker-shutdown.test.ts.
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../common/clock.js';
import { recordingLogger } from '../../../test/support/recording-logger.js';
import { SignalStop, type SignalSource, type StoppableParts } from './broker.js';

/**
 * A stop on a ManualClock. The server's close ends when its grace runs out (as the real one
 * does when a call never ends: it cuts it then, server/server.ts); the broker's close ends
 * when the test says.
 */
function makeStop(shutdownTimeoutMs: number) {
  const clock = new ManualClock();
  const logger = recordingLogger();
  const signals = new EventEmitter();
  const exits: number[] = [];
  const stop = new SignalStop({ config: { shutdownTimeoutMs }, logger, clock, signals: signals as SignalSource, exit: () => void exits.push(clock.nowMs()) });
  const server = { graceMs: undefined as number | undefined };
  const broker = { closeStartedMs: undefined as number | undefined, finishClose: (): void => undefined };
  const parts: StoppableParts = {
    server: {
      callsInFlight: 1,
      close: (graceMs) =>
        new Promise<void>((resolve) => {
          server.graceMs = graceMs;
          clock.setTimer(graceMs ?? 5_000, resolve);
        }),
    },
    broker: {
      closeStage: 'closing partitions',
      partitionsNotClosed: () => [{ topic: 't', partition: 0 }],
      close: () =>
        new Promise<void>((resolve) => {
          broker.closeStartedMs = clock.nowMs();
          broker.finishClose = resolve;
        }),
    },
  };
  const serve = (): Promise<void> => stop.serve(parts.broker, parts.server);
  /** Moves the clock, then lets the promise callbacks it set off run. */
  const advance = async (deltaMs: number): Promise<void> => {
    clock.advance(deltaMs);
    for (let turn = 0; turn < 10; turn++) await Promise.resolve();
  };
  return { clock, logger, signals, exits, server, broker, serve, advance, stop };
}

describe('SignalStop', () => {
  it('gives calls in flight a grace of at most 5 s and half the bound, so closing the logs keeps the other half', async () => {
    for (const shutdownTimeoutMs of [1_000, 1_001, 6_000, 9_999, 10_000, 60_000, 3_600_000]) {
      const { clock, signals, exits, server, broker, serve, advance } = makeStop(shutdownTimeoutMs);
      const serving = serve();
      const signalledMs = clock.nowMs();
      signals.emit('SIGTERM', 'SIGTERM');
      const graceMs = server.graceMs as number;
      expect({ shutdownTimeoutMs, isWithinHalf: graceMs <= shutdownTimeoutMs / 2, isWithinMax: graceMs <= 5_000 }).toEqual({ shutdownTimeoutMs, isWithinHalf: true, isWithinMax: true });
      // The calls run their whole grace: only then do the logs start closing, with half the bound or more left.
      await advance(graceMs);
      expect(broker.closeStartedMs).toBe(signalledMs + graceMs);
      expect(signalledMs + shutdownTimeoutMs - (broker.closeStartedMs as number)).toBeGreaterThanOrEqual(shutdownTimeoutMs / 2);
      // The closes finish just inside the bound: a clean stop, no forced exit.
      await advance(signalledMs + shutdownTimeoutMs - 1 - clock.nowMs());
      broker.finishClose();
      await serving;
      await advance(shutdownTimeoutMs);
      expect(exits).toEqual([]);
    }
  });

  it('counts the grace from what start-up left of the bound when the signal came while the broker was starting', async () => {
    // The bound counts from that signal: with 10 s and a start-up of 8 s after it, a grace of
    // 5 s (half the whole bound) left the logs' closes no time at all.
    const { clock, logger, signals, exits, server, broker, serve, advance } = makeStop(10_000);
    const signalledMs = clock.nowMs();
    signals.emit('SIGINT', 'SIGINT');
    await advance(8_000);
    void serve();
    expect(server.graceMs).toBe(1_000);
    await advance(1_000);
    expect(broker.closeStartedMs).toBe(signalledMs + 9_000);
    await advance(1_000);
    expect(exits).toEqual([signalledMs + 10_000]); // the bound still holds for a close that hangs
    expect(logger.calls.filter((call) => call.message.startsWith('shutdown timed out')).map((call) => call.fields.stage)).toEqual(['closing partitions']);
  });

  it('ignores a signal after the stop has finished: no forced exit, and no line of a second signal', async () => {
    const { logger, signals, exits, broker, serve, advance } = makeStop(60_000);
    const serving = serve();
    signals.emit('SIGTERM', 'SIGTERM');
    await advance(5_000);
    broker.finishClose();
    await serving;
    signals.emit('SIGTERM', 'SIGTERM');
    signals.emit('SIGINT', 'SIGINT');
    await advance(120_000);
    expect(exits).toEqual([]);
    expect(logger.calls.filter((call) => call.level === 'error')).toEqual([]);
    expect(logger.calls.map((call) => call.message).slice(-3)).toEqual([
      'broker stopped cleanly',
      'signal after the stop had finished: ignored, the process is exiting',
      'signal after the stop had finished: ignored, the process is exiting',
    ]);
    expect(signals.listenerCount('SIGTERM') + signals.listenerCount('SIGINT')).toBe(2); // still handled, not node's default action
  });
});
