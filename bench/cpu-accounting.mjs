/**
 * CPU time readings shared by the measured bench clients (plain JS, run from dist/): the
 * broker process's CPU from /proc/<pid>/stat, the whole machine's busy time from /proc/stat
 * (to spot other load during a window), and this process's own CPU.
 */
import { readFileSync } from 'node:fs';

/** utime + stime of `pid` in seconds; NaN when no valid pid was given. */
export function processCpuSeconds(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return Number.NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds() {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return (user + nice + system + irq + softirq + steal) / 100;
}

/** This process's user + system CPU in seconds. */
export function clientCpuSeconds() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}
