import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { fileWriter, ParquetWriter } from 'hyparquet-writer';
import type { SchemaElement } from 'hyparquet-writer';
import { stringifyJson, type JsonValue } from '../core/json.js';
import { sampleToLoopTool } from '../core/formats/looptool.js';
import { sampleToOpenAiChatLine } from '../core/formats/openai-chat.js';
import type { Converted } from '../core/formats/rejection.js';
import { sampleToTrl } from '../core/formats/trl.js';
import { sampleToVerlRow, type VerlRow } from '../core/formats/verl.js';
import type { Sample } from '../core/schemas/sample.js';

/** Writes to a stream, waiting for it to drain when its buffer is full, so large exports keep memory flat. */
async function write(stream: WriteStream, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain');
}

/**
 * Writes records as JSON Lines (floats stay floats: written with core/json.ts). Returns the number written. The file
 * is created or truncated; records are pulled one at a time from the iterable.
 */
export async function writeJsonLines(
  file: string,
  records: AsyncIterable<JsonValue | object> | Iterable<JsonValue | object>,
): Promise<number> {
  return writeTextLines(file, jsonTexts(records));
}

async function* jsonTexts(records: AsyncIterable<JsonValue | object> | Iterable<JsonValue | object>) {
  for await (const record of records) yield stringifyJson(record);
}

/**
 * Text the file stream may hold before a write waits for the disk: with the default 16 KB every 64 KB handed to it
 * waited for its own write, a pause per chunk that was a fifth of a JSONL export's time; with a few chunks queued the
 * disk writes while the next lines are made.
 */
const WRITE_AHEAD_BYTES = 1 << 20;

/** Writes lines of text already written (each a record's JSON, no newline in it) to a file; returns how many. */
export async function writeTextLines(file: string, lines: AsyncIterable<string> | Iterable<string>): Promise<number> {
  const stream = createWriteStream(file, { encoding: 'utf8', highWaterMark: WRITE_AHEAD_BYTES });
  let count = 0;
  // Lines are handed to the stream some 64 KB at a time: a write (and its promise) per record cost more than the
  // records' own text at a hundred thousand records.
  let buffered = '';
  try {
    for await (const line of lines) {
      buffered += `${line}\n`;
      count++;
      if (buffered.length >= 1 << 16) {
        await write(stream, buffered);
        buffered = '';
      }
    }
    if (buffered.length > 0) await write(stream, buffered);
  } finally {
    stream.end();
    await once(stream, 'finish');
  }
  return count;
}

// verl reads prompt as a list of {role, content} (any length: core/formats/policy-prompt.ts) and
// reward_model.ground_truth as a string (LoopTool's json2parquet); the reward function reads extra_info.tools (JSON text).
const VERL_SCHEMA: SchemaElement[] = [
  { name: 'root', num_children: 5 },
  { name: 'data_source', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'prompt', repetition_type: 'REQUIRED', converted_type: 'LIST', num_children: 1 },
  { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
  { name: 'element', repetition_type: 'REQUIRED', num_children: 2 },
  { name: 'role', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'content', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'ability', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'reward_model', repetition_type: 'REQUIRED', num_children: 2 },
  { name: 'style', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'ground_truth', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'extra_info', repetition_type: 'REQUIRED', num_children: 3 },
  { name: 'index', type: 'INT64', repetition_type: 'REQUIRED' },
  { name: 'sample_id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
  { name: 'tools', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
];

/**
 * The UTF-8 bytes of strings, one array per distinct string. The parquet writer encodes each string value itself, a
 * new array each time, and for a column whose values repeat (the system prompt with its tools block, the tools text,
 * labels) it then hashes every byte of every value to find the repeats its dictionary keeps: most of a row group's
 * time. Equal values handed over as the same array are found by identity instead, and the file is the same.
 */
function utf8Interner(): (text: string) => Uint8Array {
  const encoder = new TextEncoder();
  const byText = new Map<string, Uint8Array>();
  return (text) => {
    let bytes = byText.get(text);
    if (bytes === undefined) byText.set(text, (bytes = encoder.encode(text)));
    return bytes;
  };
}

/**
 * Writes verl GRPO rows to a parquet file, one row group per `rowGroupSize` rows, pulling rows lazily so only one group
 * is in memory. Returns the number of rows written.
 */
export async function writeVerlParquet(
  file: string,
  rows: AsyncIterable<VerlRow> | Iterable<VerlRow>,
  options: { rowGroupSize?: number } = {},
): Promise<number> {
  const rowGroupSize = options.rowGroupSize ?? 10_000;
  // No min/max statistics per column chunk: verl and pyarrow read the rows, never filter on them, and comparing every
  // prompt's text to find them was a tenth of an export's time.
  const writer = new ParquetWriter({ writer: fileWriter(file), schema: VERL_SCHEMA, statistics: false });
  let group: VerlRow[] = [];
  let count = 0;
  const flush = async (): Promise<void> => {
    if (group.length === 0) return;
    // One interner per row group: memory stays one group's strings.
    const utf8 = utf8Interner();
    await writer.write({
      rowGroupSize: group.length,
      columnData: [
        { name: 'data_source', data: group.map((row) => row.data_source) },
        {
          name: 'prompt',
          data: group.map((row) => row.prompt.map(({ role, content }) => ({ role, content: utf8(content) }))),
        },
        { name: 'ability', data: group.map((row) => row.ability) },
        {
          name: 'reward_model',
          data: group.map(({ reward_model }) => ({ ...reward_model, ground_truth: utf8(reward_model.ground_truth) })),
        },
        {
          name: 'extra_info',
          data: group.map((row) => ({
            ...row.extra_info,
            index: BigInt(row.extra_info.index),
            tools: utf8(row.extra_info.tools),
          })),
        },
      ],
    });
    group = [];
  };
  for await (const row of rows) {
    group.push(row);
    count++;
    if (group.length >= rowGroupSize) await flush();
  }
  await flush();
  await writer.finish();
  return count;
}

/** Output formats for {@link exportSamples}: verl GRPO parquet, TRL JSONL, OpenAI chat JSONL, LoopTool JSONL. */
export const SAMPLE_EXPORT_FORMATS = ['verl-parquet', 'trl-jsonl', 'openai-jsonl', 'looptool-jsonl'] as const;
export type SampleExportFormat = (typeof SAMPLE_EXPORT_FORMATS)[number];

/** A sample that could not be written in the chosen format (an `acceptable` target in a chat format, for example). */
export interface ExportRejection {
  /** 0-based position of the sample in the input stream. */
  index: number;
  field: string;
  reason: string;
}

/**
 * Streams samples into a file in one of the export formats, one record per sample, and returns how many were written
 * and which were not (with the reason); a sample that cannot be expressed never stops the export.
 */
export async function exportSamples(options: {
  samples: AsyncIterable<Sample> | Iterable<Sample>;
  format: SampleExportFormat;
  file: string;
  dataSource?: string;
}): Promise<{ written: number; rejected: ExportRejection[] }> {
  const rejected: ExportRejection[] = [];
  async function* converted<T>(convert: (sample: Sample, index: number) => Converted<T>): AsyncGenerator<T> {
    let index = 0;
    for await (const sample of options.samples) {
      const result = convert(sample, index);
      if (result.ok) yield result.value;
      else rejected.push({ index, ...result.rejection });
      index++;
    }
  }
  let written: number;
  switch (options.format) {
    case 'verl-parquet':
      written = await writeVerlParquet(
        options.file,
        converted((sample, index) =>
          sampleToVerlRow({ sample, index, ...(options.dataSource ? { dataSource: options.dataSource } : {}) }),
        ),
      );
      break;
    case 'trl-jsonl':
      written = await writeJsonLines(options.file, converted(sampleToTrl));
      break;
    case 'openai-jsonl':
      written = await writeTextLines(options.file, converted(sampleToOpenAiChatLine));
      break;
    case 'looptool-jsonl':
      written = await writeJsonLines(
        options.file,
        converted((sample) => sampleToLoopTool(sample) as Converted<JsonValue>),
      );
      break;
  }
  return { written, rejected };
}
