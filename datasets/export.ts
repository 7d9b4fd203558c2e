import type pg from 'pg';
import {
  sampleToOpenAiChatLine,
  sampleToTrl,
  sampleToVerlRow,
  type Converted,
  type TrlRecord,
  type VerlRow,
} from '../core/formats/index.js';
import type { Sample } from '../core/schemas/sample.js';
import type { ExportFormat } from '../core/vocabulary.js';
import { tooLongSampleIds } from '../db/queries/probe-results.js';
import { getVersion, streamSamplesInContentOrder } from '../db/queries/versions.js';
import { createSampleDecoder } from '../db/sample-codec.js';
import { writeJsonLines, writeTextLines, writeVerlParquet } from './writers.js';

/**
 * verl routes each row to a reward function by `data_source`; every looptool export uses the one name the LoopTool
 * reward is registered under, whatever the dataset is called (which also keeps an export byte-identical across loops).
 */
export const VERL_DATA_SOURCE = 'looptool';

export interface ExportSummary {
  version: string;
  written: number;
  /** Samples the format cannot express (e.g. BFCL acceptable-values targets in a chat format), by reason. */
  skipped: Record<string, number>;
}

/**
 * Streams a version's samples, a page at a time, decoded, in content order: the same version exports to the same
 * bytes in any database, so a trainer that hashes its input (and a loop rerun with the same seed) sees the same file.
 */
async function* versionSamples(
  pool: pg.Pool,
  versionId: number,
  pageSize: number,
  skip: (id: string) => boolean,
): AsyncGenerator<Sample> {
  // One decoder for the whole export: each toolset's tools are read once and shared by its samples.
  const decode = createSampleDecoder();
  for await (const page of streamSamplesInContentOrder(pool, versionId, pageSize))
    for (const stored of page) if (!skip(stored.id)) yield decode(stored);
}

/** Why an export leaves out the samples a loop's probe found too long. */
export const TOO_LONG_SKIP_REASON =
  "prompt longer than the policy's context or the training prompt budget (probe: too_long)";

/**
 * Writes a dataset version in a training format, streaming: one page of members and one parquet row group at a time
 * in memory, so a million-sample export keeps memory flat.
 */
export async function exportVersion(
  pool: pg.Pool,
  input: {
    ref: string;
    format: ExportFormat;
    out: string;
    pageSize?: number;
    /** A loop whose `too_long` probe results are left out (its training exports). */
    withoutTooLongOf?: string;
  },
): Promise<ExportSummary> {
  const version = await getVersion(pool, input.ref);
  const summary: ExportSummary = { version: version.ref, written: 0, skipped: {} };
  const pageSize = input.pageSize ?? 2_000;
  const tooLong = input.withoutTooLongOf ? await tooLongSampleIds(pool, input.withoutTooLongOf) : new Set<string>();
  const skip = (id: string) => {
    if (!tooLong.has(id)) return false;
    summary.skipped[TOO_LONG_SKIP_REASON] = (summary.skipped[TOO_LONG_SKIP_REASON] ?? 0) + 1;
    return true;
  };
  async function* converted<T>(convert: (sample: Sample, index: number) => Converted<T>): AsyncGenerator<T> {
    let index = 0;
    for await (const sample of versionSamples(pool, version.id, pageSize, skip)) {
      const result = convert(sample, index);
      if (result.ok) {
        index++;
        yield result.value;
      } else {
        const reason = `${result.rejection.field ? `${result.rejection.field}: ` : ''}${result.rejection.reason}`;
        summary.skipped[reason] = (summary.skipped[reason] ?? 0) + 1;
      }
    }
  }
  switch (input.format) {
    case 'verl-parquet':
      summary.written = await writeVerlParquet(
        input.out,
        converted<VerlRow>((sample, index) => sampleToVerlRow({ sample, index, dataSource: VERL_DATA_SOURCE })),
      );
      break;
    case 'trl-jsonl':
      summary.written = await writeJsonLines(
        input.out,
        converted<TrlRecord>((sample) => sampleToTrl(sample)),
      );
      break;
    case 'openai-jsonl':
      summary.written = await writeTextLines(
        input.out,
        converted<string>((sample) => sampleToOpenAiChatLine(sample)),
      );
      break;
  }
  return summary;
}
