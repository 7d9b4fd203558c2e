import { z } from 'zod';
import {
  isJsonObject,
  isJsonTree,
  type JsonObject as JsonObjectValue,
  type JsonValue as JsonValueType,
} from '../json.js';

/**
 * Checks the lossless JSON value model (see core/json.ts) by hand: zod cannot infer a recursive union, and a custom
 * check is much faster than a recursive zod union on large argument trees.
 */
export function isJsonValue(value: unknown): value is JsonValueType {
  return isJsonTree(value, true);
}

/** Any JSON value, with floats tagged (`JsonFloat`) so that `5.0` stays distinct from `5`. */
export const JsonValue = z.custom<JsonValueType>((value) => isJsonValue(value), {
  message: 'expected a JSON value (parse JSON with core/json.ts parseJson so floats keep their tag)',
});
export type JsonValue = JsonValueType;

/** A JSON object (string keys, JSON values). */
export const JsonObject = z.custom<JsonObjectValue>((value) => isJsonObject(value) && isJsonValue(value), {
  message: 'expected a JSON object',
});
export type JsonObject = JsonObjectValue;
