import type { BfclAnswer } from '../../core/formats/bfcl.js';
import type { JsonValue } from '../../core/json.js';
import type { ParsedCall } from '../../core/parse/types.js';
import { pyRepr, type PyDict } from '../../core/python.js';

/** The possible answer's first acceptable value per argument (optional and empty ones left out): a correct prediction. */
export function firstValues(answer: BfclAnswer | undefined): ParsedCall[] {
  return (answer?.calls ?? []).map((call) => {
    const args: PyDict = {};
    for (const [param, alternatives] of Object.entries(call.arguments))
      if (alternatives.length > 0 && alternatives[0] !== '') args[param] = alternatives[0] as JsonValue;
    return { name: call.name, arguments: args };
  });
}

/** Calls as a prompting model writes them: `[f(a=1), g(b='x')]`. */
export function pythonText(calls: readonly ParsedCall[]): string {
  return `[${calls
    .map(
      (call) =>
        `${call.name}(${Object.entries(call.arguments)
          .map(([k, v]) => `${k}=${pyRepr(v)}`)
          .join(', ')})`,
    )
    .join(', ')}]`;
}
