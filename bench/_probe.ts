import { rawSequentialWrite, syncAll, mbPerSecond, freshDataDir, removeDir } from './common.js';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
const dir = freshDataDir('probe');
const total = 1024 * 1024 * 1024;
for (const mode of ['plain', 'prewarm', 'plain', 'prewarm']) {
  const out = [];
  for (let i = 0; i < 6; i++) {
    rmSync(join(dir, 'raw.bin'), { force: true });
    syncAll();
    if (mode === 'prewarm') { await rawSequentialWrite(join(dir, 'warm.bin'), total); rmSync(join(dir, 'warm.bin')); }
    const s = await rawSequentialWrite(join(dir, 'raw.bin'), total);
    out.push(mbPerSecond(total, s).toFixed(0));
    await new Promise((r) => setTimeout(r, 3000));
  }
  console.log(mode, out.join(' '));
}
removeDir(dir);
