/**
 * One line of `npm run bench`'s closing table: a figure a section measured, beside the target or anchor it is judged
 * against. Sections return their figures from `run()`; `bench/index.ts` prints them all in one table after the
 * machine's description, so a reader sees every goal and where it stands without reading each section's own output.
 */
export interface Figure {
  /** The bench section (its file name). */
  section: string;
  /** What was measured, e.g. `probe samples/s (100,000 samples)`. */
  figure: string;
  /** The measured value, formatted with its unit. */
  value: string;
  /** The goal (`≥ 5,000/s`) or the anchor it is compared with (`BFCL 6,179/s`). */
  target: string;
  /** Whether the target holds; undefined for figures shown for information. */
  met?: boolean;
}

/** A rate as people read it: `12,345/s`. */
export function perSecond(count: number, seconds: number): string {
  return `${Math.round(count / seconds).toLocaleString('en-US')}/s`;
}
