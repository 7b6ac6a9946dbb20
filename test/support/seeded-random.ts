/** mulberry32: a tiny seeded generator, so a failing run can be replayed from its seed. */
export interface SeededRandom {
  int(minInclusive: number, maxInclusive: number): number;
  /** `count` random bytes. */
  bytes(count: number): Buffer;
}

export function seededRandom(seed: number): SeededRandom {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return { int, bytes: (count) => Buffer.from(Array.from({ length: count }, () => int(0, 255))) };
}
