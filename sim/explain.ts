/**
 * The short sentences a judge writes: what is wrong with a response compared with the truth, and what the correct
 * response does. They name the real difference (the argument, the value, the missing call), as a good judge would.
 */
import { canonicalJson, numericValue, stringifyJson, type JsonValue } from '../core/json.js';
import { wireToolName } from '../core/schemas/function-def.js';
import type { ToolCall } from '../core/schemas/tool-call.js';
import type { Response } from './truth.js';

function show(value: JsonValue | undefined): string {
  return value === undefined ? 'nothing' : stringifyJson(value, { separators: 'python' });
}

function same(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  const na = numericValue(a);
  const nb = numericValue(b);
  if (na !== undefined && nb !== undefined) return na === nb;
  return canonicalJson(a) === canonicalJson(b);
}

/** A call as one line: `get_forecast(city="Paris", days=3)`. */
export function showCall(call: ToolCall): string {
  const args = Object.entries(call.arguments).map(([k, v]) => `${k}=${show(v)}`);
  return `${call.name}(${args.join(', ')})`;
}

/** What the correct response does, in one or two sentences. */
export function correctApproach(truth: readonly ToolCall[] | 'no_call'): string {
  if (truth === 'no_call')
    return 'The correct response makes no tool call and tells the user that none of the available tools fits the request.';
  if (truth.length === 1) return `The correct response calls ${showCall(truth[0] as ToolCall)}.`;
  return `The correct response makes ${truth.length} calls: ${truth.map(showCall).join('; ')}.`;
}

function overlap(a: ToolCall, b: ToolCall): number {
  let n = 0;
  for (const [k, v] of Object.entries(a.arguments)) if (same(v, b.arguments[k])) n++;
  return n;
}

/** Every issue of a response against the truth, most important first; empty when they agree. */
export function responseIssues(truth: readonly ToolCall[] | 'no_call', response: Response, label: string): string[] {
  if (truth === 'no_call') {
    if (response.kind === 'text') return [];
    return [
      `${label} calls ${response.calls.map((c) => c.name).join(' and ')} although none of the available tools fits the request.`,
    ];
  }
  if (response.kind === 'text') {
    return [`${label} answers in text instead of calling ${[...new Set(truth.map((c) => c.name))].join(' and ')}.`];
  }
  const issues: string[] = [];
  const remaining = [...response.calls];
  const unmatched: ToolCall[] = [];
  for (const expected of truth) {
    let best = -1;
    let bestScore = -1;
    remaining.forEach((call, index) => {
      if (wireToolName(call.name) !== wireToolName(expected.name)) return;
      const score = overlap(expected, call);
      if (score > bestScore) {
        best = index;
        bestScore = score;
      }
    });
    if (best < 0) {
      unmatched.push(expected);
      continue;
    }
    const [got] = remaining.splice(best, 1) as [ToolCall];
    for (const [k, v] of Object.entries(expected.arguments)) {
      if (!(k in got.arguments))
        issues.push(`${label} omits the argument '${k}' of ${expected.name}, which should be ${show(v)}.`);
      else if (!same(got.arguments[k], v))
        issues.push(
          `${label} sets '${k}' of ${expected.name} to ${show(got.arguments[k])}, but the user asked for ${show(v)}.`,
        );
    }
    for (const k of Object.keys(got.arguments)) {
      if (!(k in expected.arguments))
        issues.push(`${label} passes '${k}' to ${expected.name}, which the user never asked for.`);
    }
  }
  for (const expected of unmatched) {
    const wrong = remaining.shift();
    if (wrong) issues.unshift(`${label} calls ${wrong.name} where ${expected.name} is needed.`);
    else issues.unshift(`${label} misses the call ${showCall(expected)}.`);
  }
  for (const extra of remaining)
    issues.push(`${label} makes an extra call to ${extra.name} that the request does not need.`);
  return issues;
}

/** At most two sentences on why a response is wrong; a generic doubt when it is in fact right (a judge's mistake). */
export function errorAnalysis(truth: readonly ToolCall[] | 'no_call', response: Response, label: string): string {
  const issues = responseIssues(truth, response, label);
  if (issues.length > 0) return issues.slice(0, 2).join(' ');
  if (response.kind === 'text') return `${label} may not address what the user asked for.`;
  const first = response.calls[0];
  const arg = first ? Object.keys(first.arguments)[0] : undefined;
  return first && arg
    ? `${label} may use the wrong value for '${arg}' of ${first.name}.`
    : `${label} may not be the call the user needs.`;
}
