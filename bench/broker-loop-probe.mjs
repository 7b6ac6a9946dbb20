/**
 * Diagnostic preload for the broker in broker-latency.ts --probe (never in the measured
 * runs): `node --import ./bench/broker-loop-probe.mjs bin/runnel.js broker …`. Records the
 * broker's event-loop delay (perf_hooks.monitorEventLoopDelay, 1 ms resolution) and every GC
 * pause (PerformanceObserver 'gc'). On SIGUSR2 it writes what it saw since the previous
 * SIGUSR2 as JSON to $RUNNEL_BENCH_PROBE_OUT and starts over, so a bench can bracket a run.
 *
 * Note the 1 ms sampling timer wakes the loop every millisecond, which itself changes how an
 * idle broker behaves: use it to explain a tail, not to measure one.
 */
import { writeFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const out = process.env.RUNNEL_BENCH_PROBE_OUT;
const KIND = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor (scavenge)',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major (mark-compact)',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking step',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};

let histogram = monitorEventLoopDelay({ resolution: 1 });
histogram.enable();
let pauses = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) pauses.push({ kind: KIND[entry.detail?.kind] ?? String(entry.detail?.kind), ms: entry.duration, at: entry.startTime });
}).observe({ entryTypes: ['gc'] });
let since = performance.now();

process.on('SIGUSR2', () => {
  const byKind = {};
  for (const pause of pauses) {
    const slot = (byKind[pause.kind] ??= { count: 0, totalMs: 0, maxMs: 0, over1ms: 0 });
    slot.count++;
    slot.totalMs += pause.ms;
    slot.maxMs = Math.max(slot.maxMs, pause.ms);
    if (pause.ms > 1) slot.over1ms++;
  }
  const report = {
    seconds: (performance.now() - since) / 1000,
    loopDelayMs: {
      p50: histogram.percentile(50) / 1e6,
      p99: histogram.percentile(99) / 1e6,
      p999: histogram.percentile(99.9) / 1e6,
      max: histogram.max / 1e6,
      // the sampler's own 1 ms period is included in every figure
    },
    gc: byKind,
    longestPauses: [...pauses].sort((a, b) => b.ms - a.ms).slice(0, 5),
  };
  if (out !== undefined) writeFileSync(out, `${JSON.stringify(report)}\n`);
  histogram.disable();
  histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  pauses = [];
  since = performance.now();
});
