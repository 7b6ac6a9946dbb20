import { describe, expect, it } from 'vitest';
import { limits } from '../config/limits.js';
import { autoOpenSegmentFilesMax, CONNECTION_DESCRIPTORS_MIN, openFilesLimitWarning, parseOpenFilesLimit, storageDescriptorsMax } from './open-files-limit.js';

function procLimits(openFiles: string): string {
  return [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max cpu time              unlimited            unlimited            seconds   ',
    `Max open files            ${openFiles}                files     `,
    'Max locked memory         8388608              8388608              bytes     ',
    '',
  ].join('\n');
}

describe('open-files limit at start', () => {
  it('reads the soft limit of Max open files', () => {
    expect(parseOpenFilesLimit(procLimits('1024                 524288     '))).toBe(1024);
    expect(parseOpenFilesLimit(procLimits('unlimited            unlimited  '))).toBeUndefined();
    expect(parseOpenFilesLimit('no such line')).toBeUndefined();
  });

  it('counts segment files, short-lived storage files and log opens in what storage may hold', () => {
    expect(storageDescriptorsMax(1024)).toBeGreaterThan(1024 + limits.storageFileOpsInFlightMax);
    expect(storageDescriptorsMax(2048) - storageDescriptorsMax(1024)).toBe(1024);
  });

  it('warns when the limit leaves no room for connections, naming both ways out', () => {
    const warning = openFilesLimitWarning(1024, procLimits('1024                 1024       '));
    expect(warning).toMatchObject({
      openFilesLimit: 1024,
      storageDescriptorsMax: storageDescriptorsMax(1024),
      openSegmentFilesMax: 1024,
      openFilesLimitMin: storageDescriptorsMax(1024) + CONNECTION_DESCRIPTORS_MIN,
    });
    expect(warning?.message).toContain('ulimit -n');
    expect(warning?.message).toContain('openSegmentFilesMax');
    // The same text whatever the figures, so an operator can grep for it.
    expect(openFilesLimitWarning(4096, procLimits('256                 256       '))?.message).toBe(warning?.message);
  });

  it('stays quiet when the limit is large enough, unlimited, or unknown', () => {
    const enough = storageDescriptorsMax(1024) + CONNECTION_DESCRIPTORS_MIN;
    expect(openFilesLimitWarning(1024, procLimits(`${enough}                 ${enough}       `))).toBeUndefined();
    expect(openFilesLimitWarning(1024, procLimits(`${enough - 1}                 ${enough}       `))).toBeDefined();
    expect(openFilesLimitWarning(1024, procLimits('unlimited            unlimited  '))).toBeUndefined();
    expect(openFilesLimitWarning(1024, undefined)).toBeUndefined();
  });

  it('sizes the segment-file cache at half the limit, from 1,024 to 65,536, when it is not set', () => {
    expect(autoOpenSegmentFilesMax(procLimits('20000                20000      '))).toBe(10_000);
    // Node raised the soft limit to systemd's hard one, or Docker's.
    expect(autoOpenSegmentFilesMax(procLimits('524288               524288     '))).toBe(65_536);
    expect(autoOpenSegmentFilesMax(procLimits('1048576              1048576    '))).toBe(65_536);
    // A small limit keeps the old fixed cap, and the warning above says what to do.
    expect(autoOpenSegmentFilesMax(procLimits('1024                 1024       '))).toBe(1024);
    expect(openFilesLimitWarning(autoOpenSegmentFilesMax(procLimits('1024                 1024       ')), procLimits('1024                 1024       '))).toBeDefined();
    // Unknown (not Linux) or reported unlimited: the old fixed cap.
    expect(autoOpenSegmentFilesMax(undefined)).toBe(1024);
    expect(autoOpenSegmentFilesMax(procLimits('unlimited            unlimited  '))).toBe(1024);
  });

  it('leaves room for connections with the cap it picks, whatever the limit', () => {
    for (const limit of [2048, 4096, 20_000, 65_536, 200_000]) {
      const text = procLimits(`${limit}                 ${limit}       `);
      expect(openFilesLimitWarning(autoOpenSegmentFilesMax(text), text)).toBeUndefined();
    }
  });
});
