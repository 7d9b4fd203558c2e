import { performance } from 'node:perf_hooks';

/** One measured workload: how many operations ran in how long. */
export interface Measurement {
  name: string;
  operations: number;
  seconds: number;
}

export interface MeasureOptions {
  /** Time spent running the workload before measuring, so the JIT has compiled the hot paths. Defaults to 300 ms. */
  warmupMs?: number;
  /** Measured time; the workload repeats over its inputs until at least this much has passed. Defaults to 1000 ms. */
  minMs?: number;
}

/**
 * Runs `fn` over `inputs` repeatedly, first for a warm-up period and then for a measured period, and reports the
 * operations and time of the measured part. `sink` keeps results alive so the optimiser cannot drop the work.
 */
export function measure<T>(
  name: string,
  inputs: readonly T[],
  fn: (input: T) => unknown,
  options: MeasureOptions = {},
): Measurement {
  if (inputs.length === 0) throw new Error(`${name}: no inputs`);
  const warmupMs = options.warmupMs ?? 300;
  const minMs = options.minMs ?? 1000;
  let sink = 0;
  const pass = (): void => {
    for (const input of inputs) if (fn(input)) sink++;
  };
  const warmupEnd = performance.now() + warmupMs;
  while (performance.now() < warmupEnd) pass();
  let operations = 0;
  const start = performance.now();
  let elapsed: number;
  do {
    pass();
    operations += inputs.length;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  if (sink < 0) console.log(sink);
  return { name, operations, seconds: elapsed / 1000 };
}

/** The results as an aligned table: name, operations, operations per second, microseconds per operation. */
export function formatMeasurements(title: string, rows: readonly Measurement[], unit = 'check'): string {
  const header = ['workload', `${unit}s`, `${unit}s/s`, `µs/${unit}`];
  const cells = rows.map((row) => [
    row.name,
    String(row.operations),
    Math.round(row.operations / row.seconds).toLocaleString('en-US'),
    ((row.seconds * 1e6) / row.operations).toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: string[]): string =>
    c.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] as number) : cell.padStart(widths[i] as number))).join('  ');
  return [`== ${title}`, line(header), ...cells.map(line)].join('\n');
}

/** Runs `fn`, timing it and sampling this process's RSS every 20 ms. */
export async function measurePhase<T>(
  fn: () => Promise<T>,
): Promise<{ result: T; seconds: number; peakRssMb: number }> {
  // `memoryUsage.rss()` reads the one figure; `memoryUsage()` also walks the heap spaces, 1-2% of a busy process's CPU
  // at this rate.
  let peak = process.memoryUsage.rss();
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  const start = performance.now();
  try {
    const result = await fn();
    return {
      result,
      seconds: (performance.now() - start) / 1000,
      peakRssMb: Math.round(Math.max(peak, process.memoryUsage.rss()) / 1e6),
    };
  } finally {
    clearInterval(sampler);
  }
}
