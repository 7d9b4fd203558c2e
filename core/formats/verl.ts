/**
 * verl GRPO rows, as LoopTool's `json2parquet.py` writes them: `prompt` is `[system: instruction, user: input]` in
 * LoopTool's rendering, `reward_model` is `{style: "rule", ground_truth: label}`, plus `data_source`. The parquet file
 * itself is written outside core/ (datasets/writers.ts); this builds one row.
 */
import { sampleId, type Sample } from '../schemas/sample.js';
import { sampleToLoopTool } from './looptool.js';
import { accept, type Converted } from './rejection.js';

export interface VerlRow {
  data_source: string;
  prompt: { role: 'system' | 'user'; content: string }[];
  ability: string;
  reward_model: { style: 'rule'; ground_truth: string };
  extra_info: { index: number; sample_id: string };
}

/** One verl row for a sample (`calls` and `text` targets; an `acceptable` target has no single label). */
export function sampleToVerlRow(input: { sample: Sample; index: number; dataSource?: string }): Converted<VerlRow> {
  const record = sampleToLoopTool(input.sample);
  if (!record.ok) return record;
  return accept({
    data_source: input.dataSource ?? 'looptool',
    prompt: [
      { role: 'system', content: record.value.instruction },
      { role: 'user', content: record.value.input },
    ],
    ability: 'tool_call',
    reward_model: { style: 'rule', ground_truth: record.value.output },
    extra_info: { index: input.index, sample_id: sampleId(input.sample) },
  });
}
