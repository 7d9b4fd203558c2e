/**
 * TRL GRPO records (`trl-jsonl`): the conversational prompt-only format, `prompt` being the chat the policy sees
 * ({@link policyPrompt}: the same messages as verl's `prompt`, the probe and the evaluation), plus the columns TRL
 * passes to reward functions as keyword arguments: the label text, the tools and the sample id. `tools` is JSON text:
 * as a list of objects the `datasets` library would infer one struct schema per file and refuse tools whose
 * parameters differ.
 */
import { stringifyJson } from '../json.js';
import { sampleId, type Sample } from '../schemas/sample.js';
import { renderOutput } from './looptool.js';
import { policyPrompt, type PolicyPromptMessage } from './policy-prompt.js';
import { accept, type Converted } from './rejection.js';

export interface TrlRecord {
  prompt: PolicyPromptMessage[];
  /** The label, as verl's `reward_model.ground_truth`: `<tool_call>` blocks or text. */
  ground_truth: string;
  /** The sample's tools as JSON text (the reward endpoint's `tools`). */
  tools: string;
  sample_id: string;
}

/** One TRL GRPO record for a sample (`calls` and `text` targets; an `acceptable` target has no single label). */
export function sampleToTrl(sample: Sample): Converted<TrlRecord> {
  const label = renderOutput(sample.target);
  if (!label.ok) return label;
  return accept({
    prompt: policyPrompt(sample),
    ground_truth: label.value,
    tools: stringifyJson(sample.tools),
    sample_id: sampleId(sample),
  });
}
