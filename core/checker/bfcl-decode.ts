/**
 * The step BFCL runs before its AST checker (`eval_runner.py`): decode the model's result, check the decoded form, and
 * score irrelevance/relevance on whether anything decoded. Results may be raw text, BFCL's decoded form
 * `[{name: {args}}]` (as in its possible answers and FC result files, where args may be a JSON string), or an OpenAI
 * `tool_calls` array.
 */
import { isJsonObject, parseJson, type JsonValue } from '../json.js';
import { callFromJson, parseJsonCalls } from '../parse/json-calls.js';
import { parseToolCallBlocks, stripThinking } from '../parse/model-output.js';
import { parsePythonCalls, type PythonDecodeOptions } from '../parse/python-calls.js';
import type { ParsedCall, ParseResult } from '../parse/types.js';
import { BFCL_ERROR, checkBfcl, type CompiledBfclQuestion, type Verdict } from './bfcl-ast.js';

/**
 * How raw text is decoded. `python` is BFCL's default for prompting models (`default_decode_ast_prompting`); `hermes` is
 * BFCL's Qwen FC handler (`<tool_call>` blocks, malformed blocks skipped); `json` reads JSON calls; `auto` picks hermes
 * when the text has a `<tool_call>` tag, JSON when it starts with `{` or `[{`, and Python otherwise.
 */
export type BfclDecoder = 'auto' | 'python' | 'hermes' | 'json';

export type BfclDecoded =
  | { ok: true; calls: ParsedCall[] }
  | { ok: false; errorType: typeof BFCL_ERROR.decoderFailed | typeof BFCL_ERROR.wrongOutputFormat; error: string };

const LOOKS_LIKE_JSON_ARRAY = /^\[\s*\{/;

function fromParse(result: ParseResult): BfclDecoded {
  if (result.ok) return { ok: true, calls: result.calls };
  return {
    ok: false,
    errorType: BFCL_ERROR.decoderFailed,
    error: `Invalid syntax. Failed to decode AST. ${result.error.reason}`,
  };
}

const WRONG_FORMAT: BfclDecoded = {
  ok: false,
  errorType: BFCL_ERROR.wrongOutputFormat,
  error:
    'Did not output in the specified format. Note: the model_result is wrapped in a string to ensure json serializability.',
};

/** Decodes raw model text with one of BFCL's decoders (reasoning in `<think>` removed first, as BFCL's handlers store it). */
export function decodeBfclText(
  text: string,
  decoder: BfclDecoder = 'auto',
  options: PythonDecodeOptions = {},
): BfclDecoded {
  const { content } = stripThinking(text);
  let chosen = decoder;
  if (chosen === 'auto') {
    const trimmed = content.trim();
    chosen = content.includes('<tool_call>')
      ? 'hermes'
      : trimmed.startsWith('{') || LOOKS_LIKE_JSON_ARRAY.test(trimmed)
        ? 'json'
        : 'python';
  }
  switch (chosen) {
    case 'hermes':
      return fromParse(parseToolCallBlocks(content, { onMalformed: 'skip' }));
    case 'json':
      return fromParse(parseJsonCalls(content));
    default:
      return fromParse(parsePythonCalls(content, options));
  }
}

/**
 * Decodes a prediction's `result` as stored in a predictions file: text is decoded with {@link decodeBfclText}; a list is
 * either an OpenAI `tool_calls` array or BFCL's decoded form, which must pass BFCL's `is_function_calling_format_output`
 * (a list of one-key dicts whose value is a dict, or a JSON string of one) or it is `decoder_wrong_output_format`.
 */
export function decodeBfclResult(
  result: JsonValue,
  decoder: BfclDecoder = 'auto',
  options: PythonDecodeOptions = {},
): BfclDecoded {
  if (typeof result === 'string') return decodeBfclText(result, decoder, options);
  // BFCL's handlers raise on anything but text or a list before its format check runs.
  if (!Array.isArray(result))
    return {
      ok: false,
      errorType: BFCL_ERROR.decoderFailed,
      error: 'Invalid syntax. Failed to decode AST. result must be text or a list of calls',
    };
  if (result.length > 0 && result.every(isOpenAiToolCall)) {
    const calls: ParsedCall[] = [];
    for (const item of result) {
      const read = callFromJson(item);
      if (!read.ok)
        return {
          ok: false,
          errorType: BFCL_ERROR.decoderFailed,
          error: `Invalid syntax. Failed to decode AST. ${read.reason}`,
        };
      calls.push(read.call);
    }
    return { ok: true, calls };
  }
  const calls: ParsedCall[] = [];
  for (const item of result) {
    if (!isJsonObject(item)) return WRONG_FORMAT;
    const keys = Object.keys(item);
    if (keys.length !== 1) return WRONG_FORMAT;
    const name = keys[0] as string;
    let args = item[name] as JsonValue;
    if (typeof args === 'string') {
      // BFCL's FC handlers store arguments as the JSON string the API returned and json.loads them when decoding.
      const parsed = parseJson(args);
      if (!parsed.ok)
        return {
          ok: false,
          errorType: BFCL_ERROR.decoderFailed,
          error: `Invalid syntax. Failed to decode AST. ${parsed.error.message}`,
        };
      args = parsed.value;
    }
    if (!isJsonObject(args)) return WRONG_FORMAT;
    calls.push({ name, arguments: args });
  }
  return { ok: true, calls };
}

// An OpenAI tool call has a `function` object with a string name; a BFCL decoded call to a function literally called
// "function" with exactly the parameters name and arguments is the one ambiguous case, and is read the OpenAI way.
function isOpenAiToolCall(item: JsonValue): boolean {
  if (!isJsonObject(item)) return false;
  const fn = item.function;
  return (
    isJsonObject(fn) &&
    typeof fn.name === 'string' &&
    'arguments' in fn &&
    Object.keys(item).every((k) => k === 'function' || k === 'id' || k === 'type' || k === 'index')
  );
}

/**
 * Decodes a prediction's result ({@link decodeBfclResult}) and scores it ({@link scoreBfcl}). For irrelevance, where a
 * failed decode only means no call was made, the failure's message is not worked out.
 */
export function scoreBfclResult(
  question: CompiledBfclQuestion,
  result: JsonValue,
  decoder: BfclDecoder = 'auto',
): Verdict {
  return scoreBfcl(question, decodeBfclResult(result, decoder, { errorDetail: question.kind !== 'irrelevance' }));
}

/**
 * Scores a decoded result the way `eval_runner.py` does: irrelevance passes when nothing decodes (a decode failure, a
 * wrong format or no calls), relevance when at least one call decodes (arguments unchecked), and the AST categories
 * fail on decode errors before the AST checker runs.
 */
export function scoreBfcl(question: CompiledBfclQuestion, decoded: BfclDecoded): Verdict {
  if (question.kind === 'irrelevance') return checkBfcl(question, decoded.ok ? decoded.calls : []);
  if (question.kind === 'relevance') {
    if (decoded.ok && decoded.calls.length > 0) return { valid: true };
    const reason = decoded.ok ? 'None' : decoded.error.replace(/^Invalid syntax\. Failed to decode AST\. /, '');
    return {
      valid: false,
      errorType: BFCL_ERROR.relevanceDecoderFailed,
      error: `Invalid syntax. Failed to decode AST when it should have. ${reason}`,
    };
  }
  if (!decoded.ok) return { valid: false, errorType: decoded.errorType, error: decoded.error };
  return checkBfcl(question, decoded.calls);
}
