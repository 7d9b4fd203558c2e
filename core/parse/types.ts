import type { PyDict } from '../python.js';

/** A call decoded from model output. Arguments may hold Python-only values (tuples) when the source was Python syntax. */
export interface ParsedCall {
  name: string;
  arguments: PyDict;
}

/** Where a model's calls were found. `text` means none were: the output is a plain answer. */
export type OutputFormat = 'tool_call_blocks' | 'python' | 'json' | 'openai_tool_calls' | 'text';

export type ParseErrorKind =
  /** JSON that does not parse. */
  | 'invalid_json'
  /** Python call syntax that does not parse. */
  | 'invalid_python'
  /** Well-formed, but not a call (no name, arguments not an object, not a call expression …). */
  | 'invalid_call'
  /** A `<tool_call>` with no `</tool_call>` (usually a truncated generation). */
  | 'unclosed_tool_call'
  /** Parsed, but a value cannot be resolved the way BFCL's decoder resolves it (a set, a lambda, `1/0` …). */
  | 'unsupported_value';

/** Why model output could not be decoded, with the position in the original text when there is one. */
export interface ParseError {
  kind: ParseErrorKind;
  format: OutputFormat;
  reason: string;
  offset?: number;
  line?: number;
  column?: number;
}

/** The outcome of parsing model output: never thrown, always one of these. */
export type ParseResult = { ok: true; format: OutputFormat; calls: ParsedCall[] } | { ok: false; error: ParseError };

/**
 * What to do with a `<tool_call>` block that does not hold a valid call: fail the whole reply (`error`, the default:
 * vLLM's hermes parser returns no calls at all in that case), or skip the block and keep the others (`skip`, as BFCL's
 * Qwen FC handler does).
 */
export const MALFORMED_BLOCK_POLICIES = ['error', 'skip'] as const;
export type MalformedBlockPolicy = (typeof MALFORMED_BLOCK_POLICIES)[number];

/** Which decoder reads text content. `auto` picks by shape (see {@link parseModelOutput}). */
export const CONTENT_FORMATS = ['auto', 'tool_call_blocks', 'python', 'json'] as const;
export type ContentFormat = (typeof CONTENT_FORMATS)[number];
