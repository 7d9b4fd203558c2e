import { z } from 'zod';
import { JsonObject, JsonValue } from './json-value.js';

/**
 * A tool call with parsed arguments: the form targets, parsers and checkers share. Arguments are a JSON object (floats
 * tagged), never the JSON string OpenAI puts on the wire; the format converters parse and write that string.
 */
export const ToolCall = z.object({
  name: z.string().min(1),
  arguments: JsonObject,
});
export type ToolCall = z.infer<typeof ToolCall>;

/**
 * The empty string among a parameter's acceptable values marks it optional (BFCL's convention). It is kept as the
 * literal `""` because BFCL's checker gives it meaning beyond "may be omitted": it also matches a model's `""` and `[]`.
 */
export const OPTIONAL_MARKER = '';

/**
 * One expected call in BFCL's possible-answer form: for each parameter, the list of acceptable values (with
 * {@link OPTIONAL_MARKER} when it may be omitted). For a `dict` parameter the acceptable values are dicts whose values
 * are again lists of acceptable values. A list may be empty, as in BFCL's own data (live_simple): then no value
 * matches, and leaving the parameter out is still missing, so the call can never pass; the checkers score it so
 * instead of refusing the file.
 */
export const AcceptableCall = z.object({
  name: z.string().min(1),
  arguments: z.record(z.string(), z.array(JsonValue)),
});
export type AcceptableCall = z.infer<typeof AcceptableCall>;
