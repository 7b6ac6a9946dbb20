/**
 * `readLines`: the lines of a byte stream (stdin), as they arrive, with bounded memory. It
 * yields the lines of each chunk read as one array: one await per chunk rather than per line
 * (an async generator's yield costs several promise hops).
 *
 * It pulls chunks with the stream's own async iterator, which reads only when the previous
 * chunk was consumed: a caller that awaits (for instance the producer's buffer space) stops
 * the reading, and the pipe's writer (`tail -F`) blocks instead of this process buffering.
 * Lines are raw bytes split at `\n` (a `\r` before it is dropped), so input that is not
 * UTF-8 passes through unchanged; a last line without `\n` is still a line. A line is a view
 * into the chunk it came from when it fits in one, so most lines cost no copy.
 *
 * Does not: decode text, or stop by itself. To stop early, destroy the stream; the iteration
 * then ends (or throws a premature-close error the caller may ignore).
 */
import { CliError } from './cli-error.js';

/** A line longer than this is refused rather than buffered: no record that large fits a batch. */
export const LINE_BYTES_MAX = 64 * 1024 * 1024;

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

export async function* readLines(input: AsyncIterable<Buffer | string> | Iterable<Buffer | string>): AsyncGenerator<Buffer[]> {
  /** Pieces of a line that spans chunks; their total stays below LINE_BYTES_MAX. */
  let partial: Buffer[] = [];
  let partialBytes = 0;
  let lineNumber = 0;
  for await (const data of input) {
    const chunk = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const lines: Buffer[] = [];
    let start = 0;
    for (;;) {
      const newlineAt = chunk.indexOf(NEWLINE, start);
      if (newlineAt < 0) break;
      let line = chunk.subarray(start, newlineAt);
      if (partial.length > 0) {
        line = Buffer.concat([...partial, line]);
        partial = [];
        partialBytes = 0;
      }
      lineNumber++;
      lines.push(withoutCarriageReturn(line));
      start = newlineAt + 1;
    }
    if (lines.length > 0) yield lines;
    if (start < chunk.length) {
      partial.push(chunk.subarray(start));
      partialBytes += chunk.length - start;
      if (partialBytes > LINE_BYTES_MAX) {
        throw new CliError(`line ${lineNumber + 1} is longer than ${LINE_BYTES_MAX / 1024 / 1024} MiB: split the input into smaller records`);
      }
    }
  }
  if (partial.length > 0) yield [withoutCarriageReturn(Buffer.concat(partial))];
}

function withoutCarriageReturn(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === CARRIAGE_RETURN ? line.subarray(0, line.length - 1) : line;
}
