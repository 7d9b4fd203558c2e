import { isJsonFloat, isJsonInt, isJsonObject, JsonFloat, type JsonValue } from '../json.js';
import {
  type FunctionDefinition,
  type ParamType,
  type ParameterSchema,
  wireToolName,
} from '../schemas/function-def.js';

/** One reason a call does not fit its tool schema. */
export interface CallViolation {
  /** `tool_calls[1].arguments.city` */
  field: string;
  rule: 'unknown_function' | 'missing_required' | 'unknown_parameter' | 'wrong_type' | 'not_in_enum';
  message: string;
}

function typeMatches(value: JsonValue, type: ParamType): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return isJsonInt(value);
    // JSON Schema's number admits integers; a float parameter given 5 is fine for a schema check (the BFCL checker,
    // not this rule tier, decides int/float strictness for scoring).
    case 'number':
    case 'float':
      return isJsonInt(value) || isJsonFloat(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'array':
    case 'tuple':
      return Array.isArray(value);
    case 'dict':
    case 'object':
      return isJsonObject(value);
    case 'null':
      return value === null;
    case 'any':
      return true;
  }
}

function checkValue(value: JsonValue, schema: ParameterSchema, field: string, out: CallViolation[]): void {
  const types = schema.type === undefined ? [] : Array.isArray(schema.type) ? schema.type : [schema.type];
  if (types.length > 0 && !types.some((type) => typeMatches(value, type))) {
    out.push({
      field,
      rule: 'wrong_type',
      message: `${field} should be ${types.join(' or ')}, got ${describe(value)}`,
    });
    return;
  }
  if (schema.enum && !schema.enum.some((allowed) => sameJson(allowed, value))) {
    out.push({ field, rule: 'not_in_enum', message: `${field} must be one of ${JSON.stringify(schema.enum)}` });
  }
  if (Array.isArray(value) && schema.items)
    value.forEach((item, i) => checkValue(item, schema.items!, `${field}[${i}]`, out));
}

function describe(value: JsonValue): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (value instanceof JsonFloat || isJsonFloat(value)) return 'float';
  if (isJsonInt(value)) return 'integer';
  return typeof value === 'object' ? 'object' : typeof value;
}

function sameJson(a: JsonValue, b: JsonValue): boolean {
  const num = (v: JsonValue) => (v instanceof JsonFloat ? v.value : v);
  return JSON.stringify(num(a)) === JSON.stringify(num(b));
}

/**
 * The rule tier of EDDE's two-tier validation (and of the official `filter_grpo_sample.py`): every called function
 * exists among the tools, every required parameter is present, no parameter outside the declared properties, and
 * values have the declared JSON types (and enum values). Returns every violation, empty when the calls are valid.
 */
export function validateCalls(
  calls: readonly { name: string; arguments: Record<string, JsonValue> }[],
  tools: readonly FunctionDefinition[],
): CallViolation[] {
  const byName = new Map(tools.map((tool) => [wireToolName(tool.name), tool]));
  const violations: CallViolation[] = [];
  calls.forEach((call, index) => {
    const base = `tool_calls[${index}]`;
    const tool = byName.get(wireToolName(call.name));
    if (!tool) {
      violations.push({
        field: `${base}.name`,
        rule: 'unknown_function',
        message: `${call.name} is not one of the offered tools`,
      });
      return;
    }
    const properties = tool.parameters?.properties ?? {};
    for (const required of tool.parameters?.required ?? []) {
      if (!(required in call.arguments)) {
        violations.push({
          field: `${base}.arguments.${required}`,
          rule: 'missing_required',
          message: `${call.name} requires ${required}`,
        });
      }
    }
    for (const [name, value] of Object.entries(call.arguments)) {
      const schema = properties[name];
      if (!schema) {
        violations.push({
          field: `${base}.arguments.${name}`,
          rule: 'unknown_parameter',
          message: `${call.name} has no parameter ${name}`,
        });
        continue;
      }
      checkValue(value, schema, `${base}.arguments.${name}`, violations);
    }
  });
  return violations;
}
