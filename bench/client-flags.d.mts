/** Types for client-flags.mjs, so the TypeScript orchestrators share its one parser. */
export declare function parseFlags(argv: readonly string[]): Record<string, string>;
