/**
 * int64 fields as JS numbers, with a range check so precision is never lost silently.
 * Offsets and timestamps stay far below 2^53; anything outside is rejected, not rounded.
 */

const TWO_POW_32 = 0x1_0000_0000;

/** Reads a big-endian int64, or `undefined` when it is not a safe integer. */
export function tryReadInt64(bytes: Buffer, position: number): number | undefined {
  const high = bytes.readInt32BE(position);
  const low = bytes.readUInt32BE(position + 4);
  // Safe integers have |high| < 2^21; the sign comes with `high`.
  if (high > 0x1f_ffff || high < -0x20_0000) return undefined;
  const value = high * TWO_POW_32 + low;
  return Number.isSafeInteger(value) ? value : undefined;
}

/** Writes a safe integer as a big-endian int64. */
export function writeInt64(bytes: Buffer, value: number, position: number): void {
  if (!Number.isSafeInteger(value)) throw new RangeError(`not a safe integer: ${value}`);
  const high = Math.floor(value / TWO_POW_32);
  const low = value - high * TWO_POW_32;
  bytes.writeInt32BE(high, position);
  bytes.writeUInt32BE(low, position + 4);
}
