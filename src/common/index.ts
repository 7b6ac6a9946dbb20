/**
 * Building blocks with no domain knowledge: assertions, the `Clock` seam, unit helpers.
 * Nothing here holds mutable state shared between owners.
 */
export { AssertionError, assert, assertNever, assertSafeInteger } from './assert.js';
export { ManualClock, systemClock, type Clock } from './clock.js';
export { KiB, MiB, GiB } from './units.js';
