/**
 * One entry point for "did the model call the tools right?", shared by the reward, the probe and evaluation. The mode
 * comes from configuration: `bfcl` (BFCL's AST checker, string normalisation and all) or `exact` (LoopTool's exact
 * match, fixed). See ./README.md for the rules.
 */
import { isJsonObject, type JsonValue } from '../json.js';
import { parseModelOutput, type ContentFormat, type MalformedBlockPolicy } from '../parse/model-output.js';
import type { ParseResult } from '../parse/types.js';
import type { CheckerMode } from '../vocabulary.js';
import { wireToolName, type FunctionDefinition } from '../schemas/function-def.js';
import type { Sample } from '../schemas/sample.js';
import type { AcceptableCall, ToolCall } from '../schemas/tool-call.js';
import { BFCL_ERROR, compileBfclQuestion, type CompiledBfclQuestion, type Verdict } from './bfcl-ast.js';
import { scoreBfcl, type BfclDecoded } from './bfcl-decode.js';
import type { BfclCheckKind } from './categories.js';
import { checkExact, compileExactTarget, type CompiledExactTarget } from './exact-match.js';

export * from './bfcl-ast.js';
export * from './bfcl-decode.js';
export * from './categories.js';
export * from './exact-match.js';

export type { CheckerMode } from '../vocabulary.js';

/** How replies are read and judged. Parse once at startup from the loop's config. */
export interface CheckerConfig {
  mode: CheckerMode;
  /** How text content is decoded. Defaults to `auto` (see `parseModelOutput`). */
  contentFormat?: ContentFormat;
  /** What a malformed `<tool_call>` block does. Defaults to `error` (the whole reply fails to parse). */
  onMalformedBlock?: MalformedBlockPolicy;
}

/** A model reply: text, or an assistant message with optional OpenAI `tool_calls`. */
export type ModelReply = string | { content?: string | null; tool_calls?: readonly JsonValue[] | null };

/** A sample's target prepared once, for checking many replies (a GRPO group, repeated probes). */
export interface SampleChecker {
  check(reply: ModelReply): Verdict;
  checkParsed(parsed: ParseResult): Verdict;
}

/**
 * Rewrites plain expected calls as BFCL possible answers (every argument required, its value the only acceptable one),
 * so `bfcl` mode can judge any sample. Dict arguments become dicts of one-value lists, as BFCL's answers write them.
 */
export function callsToAcceptable(calls: readonly ToolCall[], tools: readonly FunctionDefinition[]): AcceptableCall[] {
  return calls.map((call) => {
    const tool = tools.find((t) => wireToolName(t.name) === wireToolName(call.name));
    const properties = tool?.parameters?.properties ?? {};
    const args: Record<string, JsonValue[]> = {};
    for (const [param, value] of Object.entries(call.arguments)) {
      const schema = properties[param];
      const type = schema?.type;
      const itemType = schema?.items?.type;
      const wrapDict = (dict: JsonValue): JsonValue =>
        isJsonObject(dict) ? Object.fromEntries(Object.entries(dict).map(([k, v]) => [k, [v]])) : dict;
      if ((type === 'dict' || type === 'object') && isJsonObject(value)) args[param] = [wrapDict(value)];
      else if (
        (type === 'array' || type === 'tuple') &&
        (itemType === 'dict' || itemType === 'object') &&
        Array.isArray(value)
      ) {
        args[param] = [value.map(wrapDict)];
      } else args[param] = [value];
    }
    return { name: call.name, arguments: args };
  });
}

function bfclKindFor(sample: Sample): BfclCheckKind {
  const target = sample.target;
  if (target.kind === 'text') return 'irrelevance';
  if (target.calls.length > 1) return 'parallel';
  return sample.tools.length > 1 ? 'multiple' : 'simple';
}

function toDecoded(parsed: ParseResult): BfclDecoded {
  if (parsed.ok) return { ok: true, calls: parsed.calls };
  return {
    ok: false,
    errorType: BFCL_ERROR.decoderFailed,
    error: `Invalid syntax. Failed to decode AST. ${parsed.error.reason}`,
  };
}

/**
 * Compiles a checker for one sample. In `bfcl` mode the BFCL category follows from the sample: a text target is
 * `irrelevance`, several expected calls `parallel`, one call among several tools `multiple`, else `simple`. Fails with a
 * reason when the target names a tool the sample does not offer.
 */
export function compileSampleChecker(input: {
  sample: Sample;
  config: CheckerConfig;
}): { ok: true; checker: SampleChecker } | { ok: false; error: string } {
  const { sample, config } = input;
  const parse = (reply: ModelReply): ParseResult =>
    parseModelOutput(reply, {
      format: config.contentFormat ?? 'auto',
      onMalformedBlock: config.onMalformedBlock ?? 'error',
    });
  if (config.mode === 'exact') {
    const target: CompiledExactTarget = compileExactTarget({ target: sample.target, tools: sample.tools });
    return {
      ok: true,
      checker: {
        check: (reply) => checkExact(target, parse(reply)),
        checkParsed: (parsed) => checkExact(target, parsed),
      },
    };
  }
  const target = sample.target;
  const possibleAnswer =
    target.kind === 'calls'
      ? callsToAcceptable(target.calls, sample.tools)
      : target.kind === 'acceptable'
        ? target.calls
        : [];
  const compiled = compileBfclQuestion({ kind: bfclKindFor(sample), functions: sample.tools, possibleAnswer });
  if (!compiled.ok) return compiled;
  const question: CompiledBfclQuestion = compiled.question;
  return {
    ok: true,
    checker: {
      check: (reply) => scoreBfcl(question, toDecoded(parse(reply))),
      checkParsed: (parsed) => scoreBfcl(question, toDecoded(parsed)),
    },
  };
}

/** Checks one reply against one sample (compiles, then checks; use {@link compileSampleChecker} for many replies). */
export function checkSample(input: { sample: Sample; reply: ModelReply; config: CheckerConfig }): Verdict {
  const compiled = compileSampleChecker(input);
  if (!compiled.ok) return { valid: false, errorType: 'checker:invalid_target', error: compiled.error };
  return compiled.checker.check(input.reply);
}
