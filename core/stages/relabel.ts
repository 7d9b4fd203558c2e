import { isJsonObject, parseJson, type JsonObject, type JsonValue } from '../json.js';
import { wireToolName } from '../schemas/function-def.js';
import type { Sample, Target } from '../schemas/sample.js';

/** A prediction as stored by the probe: decoded calls (canonical JSON), or the text when there were none. */
export type Prediction =
  { kind: 'calls'; calls: { name: string; arguments: JsonObject }[] } | { kind: 'text'; text: string };

/** The prediction of a probe result row: its `parsed_calls` (canonical JSON text, or null) and its raw output. */
export function storedPrediction(row: { parsedCallsJson: string | null; rawOutput: string }): Prediction {
  const parsed = row.parsedCallsJson ? parseJson(row.parsedCallsJson) : undefined;
  return predictionFrom(parsed?.ok ? parsed.value : null, row.rawOutput);
}

/** Reads the probe's stored prediction: calls from `parsed_calls`, else the raw text as a no-call answer. */
export function predictionFrom(parsedCalls: JsonValue | null, rawOutput: string): Prediction {
  if (Array.isArray(parsedCalls) && parsedCalls.length > 0) {
    const calls = parsedCalls.flatMap((call) =>
      isJsonObject(call) && typeof call.name === 'string' && isJsonObject(call.arguments)
        ? [{ name: call.name, arguments: call.arguments }]
        : [],
    );
    if (calls.length === parsedCalls.length) return { kind: 'calls', calls };
  }
  return { kind: 'text', text: rawOutput };
}

/**
 * The sample with its label replaced by the policy's prediction (JGLV's LABEL_WRONG → D^LR). Names the policy wrote in
 * wire form (`math_hypot`) are mapped back to the tool's own name (`math.hypot`), so the corrected label is written in
 * the sample's vocabulary.
 */
export function relabeledSample(sample: Sample, prediction: Prediction): Sample {
  const byWireName = new Map(sample.tools.map((tool) => [wireToolName(tool.name), tool.name]));
  const target: Target =
    prediction.kind === 'text'
      ? { kind: 'text', text: prediction.text }
      : {
          kind: 'calls',
          calls: prediction.calls.map((call) => ({
            name: byWireName.get(wireToolName(call.name)) ?? call.name,
            arguments: call.arguments,
          })),
        };
  return { tools: sample.tools, messages: sample.messages, target };
}
