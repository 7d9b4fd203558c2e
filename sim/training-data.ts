/**
 * Reads a training dataset the way the real trainer would receive it, back into samples: verl GRPO parquet (`prompt` +
 * `reward_model.ground_truth`, as datasets/writers.ts writes it) or JSON Lines of TRL GRPO records (`prompt` +
 * `ground_truth`), OpenAI chat records or LoopTool `{instruction, input, output}` records. Both training exports carry
 * core/formats/policy-prompt's chat, read back with its inverse.
 */
import { createHash } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { isJsonObject, type JsonValue } from '../core/json.js';
import { loopToolToSample } from '../core/formats/looptool.js';
import { openAiChatToSamples } from '../core/formats/openai-chat.js';
import { sampleFromPolicyPrompt } from '../core/formats/policy-prompt.js';
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

interface PromptMessage {
  role: string;
  content: string;
}

function isPrompt(value: unknown): value is PromptMessage[] {
  return (
    Array.isArray(value) &&
    value.every(
      (m: unknown) =>
        typeof (m as { role?: unknown } | null)?.role === 'string' &&
        typeof (m as { content?: unknown }).content === 'string',
    )
  );
}

/** A training export's row (its prompt and label) as a sample; undefined when it is not one. */
function promptToSample(prompt: unknown, label: unknown): Sample | undefined {
  if (!isPrompt(prompt) || typeof label !== 'string') return undefined;
  const converted = sampleFromPolicyPrompt({ prompt, label });
  return converted.ok ? converted.value : undefined;
}

function recordToSample(record: JsonValue): Sample | undefined {
  if (!isJsonObject(record)) return undefined;
  if (Array.isArray(record.prompt)) return promptToSample(record.prompt, record.ground_truth);
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
  prompt?: unknown;
  reward_model?: { ground_truth?: unknown };
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
      const sample = promptToSample(row.prompt, row.reward_model?.ground_truth);
      if (sample) samples.push(sample);
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
      `${file} holds no trainable samples (${rejected} rows rejected; expected verl parquet or JSON Lines of TRL GRPO, OpenAI chat or LoopTool records)`,
    );
  return { samples, rejected, format, sha256 };
}
