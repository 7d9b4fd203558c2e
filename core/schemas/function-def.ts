import { z } from 'zod';
import { JsonValue } from './json-value.js';

/**
 * Parameter types: JSON Schema's, plus BFCL's dialect (`dict`, `float`, `tuple`, `any`). BFCL's checker maps them to
 * Python types; JSON Schema's `object` and `number` are accepted as `dict` and `float` (see core/checker/README.md).
 */
export const PARAM_TYPES = [
  'string',
  'integer',
  'number',
  'float',
  'boolean',
  'array',
  'tuple',
  'dict',
  'object',
  'any',
  'null',
] as const;
/** One of {@link PARAM_TYPES}, after Python-style aliases (`str`, `int` …) are normalised. */
export const ParamType = z.enum(PARAM_TYPES);
export type ParamType = z.infer<typeof ParamType>;

// Python-style spellings that tool sets (xLAM, ToolBench exports) use for the same types.
const TYPE_ALIASES: Record<string, ParamType> = {
  str: 'string',
  int: 'integer',
  bool: 'boolean',
  list: 'array',
  double: 'float',
};

function normalizeTypeName(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const lower = value.toLowerCase();
  return TYPE_ALIASES[lower] ?? lower;
}

const TypeField = z.preprocess(
  (value) => (Array.isArray(value) ? value.map(normalizeTypeName) : normalizeTypeName(value)),
  z.union([ParamType, z.array(ParamType).min(1)]),
);

/**
 * One parameter's schema. Written out because zod cannot infer a recursive type; the schema below is checked against
 * it. Unknown keywords (`format`, `minimum`, `response` …) are kept, so a tool list survives import and export intact.
 */
export interface ParameterSchema {
  type?: ParamType | ParamType[];
  description?: string;
  enum?: JsonValue[];
  default?: JsonValue;
  items?: ParameterSchema;
  properties?: Record<string, ParameterSchema>;
  required?: string[] | boolean;
  uniqueItems?: boolean;
  [keyword: string]: unknown;
}

/** Validates a {@link ParameterSchema}, recursively. */
export const ParameterSchema: z.ZodType<ParameterSchema> = z.lazy(() =>
  z.looseObject({
    type: TypeField.optional(),
    description: z.string().optional(),
    enum: z.array(JsonValue).optional(),
    default: JsonValue.optional(),
    items: ParameterSchema.optional(),
    properties: z.record(z.string(), ParameterSchema).optional(),
    required: z.union([z.array(z.string()), z.boolean()]).optional(),
    uniqueItems: z.boolean().optional(),
  }),
);

/** The object schema of a function's arguments: `type` is `dict` (BFCL) or `object` (JSON Schema). */
export const FunctionParameters = z.looseObject({
  type: z.preprocess(normalizeTypeName, z.enum(['dict', 'object'])),
  properties: z.record(z.string(), ParameterSchema).default({}),
  required: z.array(z.string()).optional(),
});
export type FunctionParameters = z.infer<typeof FunctionParameters>;

/**
 * A function (tool) definition: BFCL's `function` entries and OpenAI's `tools[].function` share this shape. Names may
 * contain dots (`math.hypot`); see `wireToolName` for how they are sent to an OpenAI-compatible server.
 */
export const FunctionDefinition = z.looseObject({
  name: z.string().min(1),
  description: z.string().optional(),
  parameters: FunctionParameters.optional(),
});
export type FunctionDefinition = z.infer<typeof FunctionDefinition>;

/** OpenAI's tool wrapper: `{type: 'function', function: {...}}`. */
export const OpenAiTool = z.object({ type: z.literal('function'), function: FunctionDefinition });
export type OpenAiTool = z.infer<typeof OpenAiTool>;

/**
 * The project's single rule for dotted tool names: a name is compared, and sent to OpenAI-compatible servers, with
 * every `.` replaced by `_` (OpenAI names must match `^[a-zA-Z0-9_-]{1,64}$`). The checkers apply it to both sides, so
 * `math.hypot` and `math_hypot` name the same tool everywhere (reward, probe, evaluation).
 */
export function wireToolName(name: string): string {
  return name.includes('.') ? name.replaceAll('.', '_') : name;
}

// BFCL's GORILLA_TO_OPENAPI mapping, for the types our schema accepts.
const OPENAPI_TYPES: Record<ParamType, string> = {
  string: 'string',
  integer: 'integer',
  number: 'number',
  float: 'number',
  boolean: 'boolean',
  array: 'array',
  tuple: 'array',
  dict: 'object',
  object: 'object',
  any: 'string',
  null: 'null',
};

function toOpenApiParameter(schema: ParameterSchema): ParameterSchema {
  const out: ParameterSchema = { ...schema };
  if (schema.type !== undefined) {
    out.type = (
      Array.isArray(schema.type) ? schema.type.map((t) => OPENAPI_TYPES[t]) : OPENAPI_TYPES[schema.type]
    ) as ParamType;
  }
  if (schema.items) out.items = toOpenApiParameter(schema.items);
  if (schema.properties) {
    out.properties = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, toOpenApiParameter(v)]));
  }
  return out;
}

/**
 * The OpenAI tool a server such as vLLM receives for a definition: `dict`→`object`, `float`→`number`,
 * `tuple`→`array`, `any`→`string` (BFCL's own mapping), and the name in wire form (see {@link wireToolName}).
 */
export function toOpenAiTool(definition: FunctionDefinition): OpenAiTool {
  const parameters = definition.parameters
    ? {
        ...definition.parameters,
        type: 'object' as const,
        properties: Object.fromEntries(
          Object.entries(definition.parameters.properties).map(([k, v]) => [k, toOpenApiParameter(v)]),
        ),
      }
    : { type: 'object' as const, properties: {} };
  return { type: 'function', function: { ...definition, name: wireToolName(definition.name), parameters } };
}
