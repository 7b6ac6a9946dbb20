/**
 * Writing a command's output to a stream that may push back (stdout into a slow pipe): the
 * command waits for 'drain' (or 'close') instead of buffering without bound.
 *
 * Each wait removes the listeners it added once it is over. A listener left behind per wait
 * would pile up for as long as the command runs (a consume that tails for days into a slow
 * reader waits millions of times) and make node print MaxListenersExceededWarning on stderr.
 */
import { once } from 'node:events';

/** Writes `data`; when `stream` pushes back, resolves once it drained, closed, or failed (the command's own 'error' listener sees a failure). */
export async function writeWithBackpressure(stream: NodeJS.WritableStream, data: string | Buffer): Promise<void> {
  if (stream.write(data)) return;
  const waitOver = new AbortController();
  try {
    await Promise.race([once(stream, 'drain', { signal: waitOver.signal }), once(stream, 'close', { signal: waitOver.signal })]);
  } catch {
    // A write error (EPIPE): the command's 'error' listener stops it.
  } finally {
    waitOver.abort(); // removes the listeners of the event that did not come
  }
}
