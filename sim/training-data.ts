/**
 * Reads a training dataset the way the real trainer would receive it: verl GRPO parquet (as datasets/writers.ts writes
 * it) or JSON Lines (OpenAI chat records, or LoopTool `{instruction, input, output}` records), back into samples.
 */
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { isJsonObject, type JsonValue } from '../core/json.js';
import { loopToolToSample } from '../core/formats/looptool.js';
import { openAiChatToSamples } from '../core/formats/openai-chat.js';
import type { Sample } from '../core/schemas/sample.js';
import { readRecords } from '../datasets/read-records.js';

export interface TrainingData {
  samples: Sample[];
  /** Rows or lines that are not samples (counted, not fatal, as a trainer skips bad rows). */
  rejected: number;
  format: 'verl-parquet' | 'jsonl';
  sha256: string;
}

async function isParquet(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    return bytesRead === 4 && head.toString('latin1') === 'PAR1';
  } finally {
    await handle.close();
  }
}

function recordToSample(record: JsonValue): Sample | undefined {
  if (!isJsonObject(record)) return undefined;
  if (Array.isArray(record.messages)) {
    const converted = openAiChatToSamples(record);
    return converted.ok ? converted.value[0] : undefined;
  }
  if (typeof record.instruction === 'string') {
    const converted = loopToolToSample(record);
    return converted.ok ? converted.value : undefined;
  }
  return undefined;
}

interface VerlParquetRow {
  prompt?: { role?: string; content?: string }[];
  reward_model?: { ground_truth?: string };
}

/**
 * Reads every sample of a dataset file. Throws when the file cannot be read or holds no sample at all (the job then
 * fails with that reason); individual bad rows are counted in `rejected`.
 */
export async function readTrainingData(file: string): Promise<TrainingData> {
  const bytes = await readFile(file);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const samples: Sample[] = [];
  let rejected = 0;
  let format: TrainingData['format'];
  if (await isParquet(file)) {
    format = 'verl-parquet';
    // Imported on demand: only parquet datasets need the reader.
    const { parquetReadObjects } = await import('hyparquet');
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const rows = (await parquetReadObjects({ file: buffer })) as VerlParquetRow[];
    for (const row of rows) {
      const instruction = row.prompt?.[0]?.content;
      const input = row.prompt?.[1]?.content;
      const output = row.reward_model?.ground_truth;
      const converted =
        typeof instruction === 'string' && typeof input === 'string' && typeof output === 'string'
          ? loopToolToSample({ instruction, input, output })
          : undefined;
      if (converted?.ok) samples.push(converted.value);
      else rejected++;
    }
  } else {
    format = 'jsonl';
    for await (const item of readRecords(file)) {
      const sample = item.kind === 'record' ? recordToSample(item.value) : undefined;
      if (sample) samples.push(sample);
      else rejected++;
    }
  }
  if (samples.length === 0)
    throw new Error(
      `${file} holds no trainable samples (${rejected} rows rejected; expected verl parquet or JSON Lines of OpenAI chat or LoopTool records)`,
    );
  return { samples, rejected, format, sha256 };
}
