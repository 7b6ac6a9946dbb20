import { describe, expect, it } from 'vitest';
import { readLines } from './line-reader.js';

async function collect(chunks: (string | Buffer)[]): Promise<string[]> {
  const lines: string[] = [];
  for await (const batch of readLines(chunks)) for (const line of batch) lines.push(line.toString('utf8'));
  return lines;
}

describe('readLines', () => {
  it('splits at newlines across chunk boundaries, drops a CR before LF, and keeps a last line without LF', async () => {
    expect(await collect(['one\ntw', 'o\r\nthr', 'ee', '\n\nfour'])).toEqual(['one', 'two', 'three', '', 'four']);
  });

  it('yields nothing for empty input and one empty line for a lone newline', async () => {
    expect(await collect([])).toEqual([]);
    expect(await collect(['\n'])).toEqual(['']);
  });

  it('keeps bytes that are not UTF-8 as they are, even split inside a character', async () => {
    const euro = Buffer.from('€'); // three bytes
    const lines: Buffer[] = [];
    for await (const batch of readLines([Buffer.concat([Buffer.from([0xff]), euro.subarray(0, 1)]), Buffer.concat([euro.subarray(1), Buffer.from('\n')])])) lines.push(...batch);
    expect(lines).toEqual([Buffer.concat([Buffer.from([0xff]), euro])]);
  });
});
