import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { writeWithBackpressure } from './output.js';

describe('writeWithBackpressure', () => {
  it('waits for drain when the stream pushes back, and leaves no listener behind after many waits', async () => {
    const stream = new PassThrough({ highWaterMark: 16 });
    const baseline = { drain: stream.listenerCount('drain'), close: stream.listenerCount('close'), error: stream.listenerCount('error') };
    let readBytes = 0;
    for (let i = 0; i < 50; i++) {
      const written = writeWithBackpressure(stream, Buffer.alloc(64, 0x61));
      // The reader catches up only after the write was made to wait.
      setImmediate(() => {
        let chunk: Buffer | null;
        while ((chunk = stream.read() as Buffer | null) !== null) readBytes += chunk.length;
      });
      await written;
    }
    expect(readBytes).toBe(50 * 64);
    expect({ drain: stream.listenerCount('drain'), close: stream.listenerCount('close'), error: stream.listenerCount('error') }).toEqual(baseline);
  });

  it('stops waiting when the stream closes or fails, without throwing', async () => {
    const closing = new PassThrough({ highWaterMark: 1 });
    const closed = writeWithBackpressure(closing, 'xx');
    closing.destroy();
    await expect(closed).resolves.toBeUndefined();
    const failing = new PassThrough({ highWaterMark: 1 });
    failing.on('error', () => undefined); // the command's own listener
    const failed = writeWithBackpressure(failing, 'xx');
    failing.destroy(Object.assign(new Error('broken pipe'), { code: 'EPIPE' }));
    await expect(failed).resolves.toBeUndefined();
  });
});
