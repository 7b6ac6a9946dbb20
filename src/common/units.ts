/** Byte units, so sizes read as `64 * KiB` rather than a bare 65536. */
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
