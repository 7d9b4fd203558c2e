/**
 * verl GRPO rows, in the layout of LoopTool's `json2parquet.py`: `prompt` is the chat the policy sees
 * ({@link policyPrompt}: the same messages the probe and evaluation send), `reward_model` is
 * `{style: "rule", ground_truth: label}`, plus `data_source`. `extra_info.tools` carries the sample's tools as JSON text
 * for the reward endpoint (`bfcl_ast` needs their parameter types). The parquet file itself is written outside core/
 * (datasets/writers.ts); this builds one row.
 */
import { sampleId, toolListText, type Sample } from '../schemas/sample.js';
import { renderOutput } from './looptool.js';
import { policyPrompt, type PolicyPromptMessage } from './policy-prompt.js';
import { accept, type Converted } from './rejection.js';

export interface VerlRow {
  data_source: string;
  prompt: PolicyPromptMessage[];
  ability: string;
  reward_model: { style: 'rule'; ground_truth: string };
  extra_info: { index: number; sample_id: string; tools: string };
}

/** One verl row for a sample (`calls` and `text` targets; an `acceptable` target has no single label). */
export function sampleToVerlRow(input: { sample: Sample; index: number; dataSource?: string }): Converted<VerlRow> {
  const label = renderOutput(input.sample.target);
  if (!label.ok) return label;
  return accept({
    data_source: input.dataSource ?? 'looptool',
    prompt: policyPrompt(input.sample),
    ability: 'tool_call',
    reward_model: { style: 'rule', ground_truth: label.value },
    extra_info: { index: input.index, sample_id: sampleId(input.sample), tools: toolListText(input.sample.tools) },
  });
}
