/**
 * The sim world: the catalogue compiled once into regexes, so that the true calls for any request the world can phrase
 * are recomputed from the text alone (`solve`). Requests are sentences; each sentence is one template of one tool (or
 * chit-chat, or filler); a request with several sentences asks for parallel calls.
 */
import { formatFloat, JsonFloat, type JsonObject, type JsonValue } from '../core/json.js';
import type { FunctionDefinition, ParameterSchema } from '../core/schemas/function-def.js';
import type { ChatMessage } from '../core/schemas/messages.js';
import type { ToolCall } from '../core/schemas/tool-call.js';
import {
  CATALOGUE,
  CHITCHAT_TEMPLATES,
  ENTITY_PATTERNS,
  type EntityKind,
  type ParamSpec,
  type ToolSpec,
  type ValueSpec,
} from './catalogue.js';
import { BoundedCache, type Rng } from './random.js';
import { CONNECTORS, FILLER_SENTENCES, VOCAB } from './vocab.js';

/** One compiled template. */
export interface CompiledTemplate {
  id: string;
  tool: ToolSpec;
  text: string;
  /** Slot paths in text order (`city`, `settings.language`). */
  slots: readonly string[];
  /** Each slot's path split and its value spec, in `slots` order: what reading a sentence back needs per slot. */
  slotReaders: readonly SlotReader[];
  refs: readonly string[];
  /** The entity each ref names (undefined: a ref the earlier turns cannot supply), in `refs` order. */
  refEntities: readonly (EntityKind | undefined)[];
  /** Top-level arguments a call from this template carries (slots and refs). */
  params: ReadonlySet<string>;
  regex: RegExp;
}

/** One slot of a template: the argument (`head`, and `field` inside an object) and the spec of its value. */
export interface SlotReader {
  head: string;
  field: string | undefined;
  spec: ValueSpec;
}

/** What one sentence of a request is. */
export type SentenceMatch =
  | { kind: 'clause'; template: CompiledTemplate; args: JsonObject }
  | { kind: 'chitchat'; index: number }
  | { kind: 'filler' };

/** One request sentence that names a tool, after refs are resolved. */
export interface ClauseAnalysis {
  template: CompiledTemplate;
  call: ToolCall;
  offered: boolean;
  /** False when a ref could not be found in the earlier turns. */
  resolved: boolean;
}

/** Everything the world reads from a conversation. */
export interface WorldAnalysis {
  clauses: ClauseAnalysis[];
  chitchat: number;
  fillers: number;
  /** Turns other than system messages before the last user turn. */
  priorTurns: number;
  /** The truth: calls, no call, or undefined when the world cannot tell. */
  truth: ToolCall[] | 'no_call' | undefined;
  /** Whether any true call took a value from an earlier turn. */
  dependent: boolean;
}

/** A request a generator wants phrased: one template and the arguments it carries (refs included). */
export interface ClausePlan {
  template: CompiledTemplate;
  args: JsonObject;
}

export interface SolveInput {
  tools: readonly { name: string }[];
  messages: readonly ChatMessage[];
}

const SENTENCE_SPLIT = /(?<=[.?!])\s+/;
const CONNECTOR = new RegExp(`^(?:${CONNECTORS.map((c) => escapeRegex(c.trimEnd())).join('|')})\\s+`);
const LIST_SPLIT = /, | and /;
const FILLERS = new Set<string>(FILLER_SENTENCES);

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The regex (no capture groups) recognising one value of a spec. */
function valuePattern(spec: ValueSpec): string {
  switch (spec.kind) {
    case 'vocab':
      return `(?:${[...VOCAB[spec.vocab]]
        .sort((a, b) => b.length - a.length)
        .map(escapeRegex)
        .join('|')})`;
    case 'pattern':
      return `(?:${spec.regex})`;
    case 'quoted':
      return '[^"]+';
    case 'integer':
      return '-?\\d+';
    case 'number':
      return '-?\\d+\\.\\d+';
    case 'boolean':
      return `(?:${spec.phrases.map(escapeRegex).join('|')})`;
    case 'enum':
      return `(?:${[...spec.values]
        .sort((a, b) => b.length - a.length)
        .map(escapeRegex)
        .join('|')})`;
    case 'list': {
      const item = valuePattern(spec.item);
      return `(?:${item}(?:, ${item})*(?: and ${item})?)`;
    }
    case 'object-list': {
      const item = formatPattern(spec.format, spec.fields, false).source;
      return `(?:${item}(?:, ${item})*(?: and ${item})?)`;
    }
    case 'object':
      throw new Error('an object parameter is named field by field ({param.field}), never as a whole');
  }
}

const SLOT = /\{([a-z_]+(?:\.[a-z_]+)?)\}/g;

/** Compiles an object-list item format into a regex; with `capture`, one capture group per field, in order. */
function formatPattern(
  format: string,
  fields: Readonly<Record<string, ValueSpec>>,
  capture = true,
): { source: string; order: string[] } {
  let source = '';
  const order: string[] = [];
  let last = 0;
  for (const match of format.matchAll(SLOT)) {
    const name = match[1] as string;
    const spec = fields[name];
    if (!spec) throw new Error(`format ${format} names unknown field ${name}`);
    source += escapeRegex(format.slice(last, match.index)) + (capture ? `(${valuePattern(spec)})` : valuePattern(spec));
    order.push(name);
    last = (match.index ?? 0) + match[0].length;
  }
  source += escapeRegex(format.slice(last));
  return { source, order };
}

function specAt(tool: ToolSpec, path: string): ValueSpec {
  const [head, field] = path.split('.') as [string, string | undefined];
  const param = tool.params.find((p) => p.name === head);
  if (!param) throw new Error(`${tool.name}: template names unknown parameter ${head}`);
  if (field === undefined) return param.spec;
  if (param.spec.kind !== 'object') throw new Error(`${tool.name}: ${head} is not an object`);
  const sub = param.spec.fields[field];
  if (!sub) throw new Error(`${tool.name}: ${head} has no field ${field}`);
  return sub;
}

function compileTemplate(tool: ToolSpec, index: number, text: string, refs: readonly string[]): CompiledTemplate {
  let source = '^';
  const slots: string[] = [];
  let last = 0;
  for (const match of text.matchAll(SLOT)) {
    const path = match[1] as string;
    source += escapeRegex(text.slice(last, match.index)) + `(${valuePattern(specAt(tool, path))})`;
    slots.push(path);
    last = (match.index ?? 0) + match[0].length;
  }
  source += escapeRegex(text.slice(last)) + '$';
  // A sentence after a connector starts in lower case; the first letter is the only place case may vary.
  const first = text[0] as string;
  if (/[A-Za-z]/.test(first)) source = `^[${first.toUpperCase()}${first.toLowerCase()}]` + source.slice(2);
  const params = new Set([...slots.map((s) => s.split('.')[0] as string), ...refs]);
  for (const param of tool.params) {
    if (param.required && !params.has(param.name))
      throw new Error(`${tool.name} template ${index} misses required ${param.name}`);
  }
  const slotReaders = slots.map((path): SlotReader => {
    const [head, field] = path.split('.') as [string, string | undefined];
    return { head, field, spec: specAt(tool, path) };
  });
  const refEntities = refs.map((ref) => {
    const spec = specAt(tool, ref);
    return spec.kind === 'pattern' ? spec.entity : undefined;
  });
  return {
    id: `${tool.name}#${index}`,
    tool,
    text,
    slots,
    slotReaders,
    refs,
    refEntities,
    params,
    regex: new RegExp(source),
  };
}

type ObjectListSpec = Extract<ValueSpec, { kind: 'object-list' }>;

/** Compiled item regexes of object-list specs (the catalogue's, a handful), so a sentence read back compiles none. */
const objectListReaders = new WeakMap<ObjectListSpec, { itemRegex: RegExp; order: readonly string[] }>();

function objectListReader(spec: ObjectListSpec): { itemRegex: RegExp; order: readonly string[] } {
  let reader = objectListReaders.get(spec);
  if (!reader) {
    const { source, order } = formatPattern(spec.format, spec.fields);
    reader = { itemRegex: new RegExp(`^${source}$`), order };
    objectListReaders.set(spec, reader);
  }
  return reader;
}

/** A value of a spec read back from its text. */
function parseValue(spec: ValueSpec, text: string): JsonValue {
  switch (spec.kind) {
    case 'vocab':
    case 'pattern':
    case 'quoted':
    case 'enum':
      return text;
    case 'integer':
      return Number.parseInt(text, 10);
    case 'number':
      return new JsonFloat(Number(text));
    case 'boolean':
      return text === spec.phrases[0];
    case 'list':
      return text.split(LIST_SPLIT).map((item) => parseValue(spec.item, item));
    case 'object-list': {
      const { itemRegex, order } = objectListReader(spec);
      return text.split(LIST_SPLIT).map((item) => {
        const m = itemRegex.exec(item);
        const out: JsonObject = {};
        order.forEach((field, i) => {
          out[field] = parseValue(spec.fields[field] as ValueSpec, m?.[i + 1] ?? '');
        });
        return out;
      });
    }
    case 'object':
      throw new Error('objects are parsed field by field');
  }
}

/** A value of a spec as the text says it. */
export function renderValue(spec: ValueSpec, value: JsonValue): string {
  switch (spec.kind) {
    case 'vocab':
    case 'pattern':
    case 'quoted':
    case 'enum':
      return String(value);
    case 'integer':
      return String(value);
    case 'number':
      return formatFloat(value instanceof JsonFloat ? value.value : Number(value));
    case 'boolean':
      return value === true ? spec.phrases[0] : spec.phrases[1];
    case 'list':
      return joinList((value as JsonValue[]).map((item) => renderValue(spec.item, item)));
    case 'object-list':
      return joinList(
        (value as JsonObject[]).map((item) =>
          spec.format.replace(SLOT, (_, field: string) =>
            renderValue(spec.fields[field] as ValueSpec, item[field] as JsonValue),
          ),
        ),
      );
    case 'object':
      throw new Error('objects are rendered field by field');
  }
}

function joinList(items: readonly string[]): string {
  if (items.length <= 1) return items[0] ?? '';
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** A fresh value for a spec. Floats are rounded to the spec's decimals and kept as floats. */
export function generateValue(spec: ValueSpec, rng: Rng): JsonValue {
  switch (spec.kind) {
    case 'vocab':
    case 'quoted':
      return rng.pick(VOCAB[spec.vocab]);
    case 'pattern':
      return spec.generate(rng);
    case 'integer':
      return rng.int(spec.min, spec.max);
    case 'number': {
      const scale = 10 ** spec.decimals;
      const raw = spec.min + rng.next() * (spec.max - spec.min);
      return new JsonFloat(Math.round(raw * scale) / scale);
    }
    case 'boolean':
      return rng.chance(0.5);
    case 'enum':
      return rng.pick(spec.values);
    case 'list': {
      const count = rng.int(spec.min, spec.max);
      const out: JsonValue[] = [];
      const seen = new Set<string>();
      for (let tries = 0; out.length < count && tries < count * 10; tries++) {
        const item = generateValue(spec.item, rng);
        const key = renderValue(spec.item, item);
        if (seen.has(key)) continue;
        seen.add(key);
        out.push(item);
      }
      return out;
    }
    case 'object-list': {
      const count = rng.int(spec.min, spec.max);
      return Array.from(
        { length: count },
        () => Object.fromEntries(Object.entries(spec.fields).map(([k, s]) => [k, generateValue(s, rng)])) as JsonObject,
      );
    }
    case 'object':
      return Object.fromEntries(Object.entries(spec.fields).map(([k, s]) => [k, generateValue(s, rng)])) as JsonObject;
  }
}

function schemaOf(spec: ValueSpec, description?: string): ParameterSchema {
  const base: ParameterSchema = description ? { description } : {};
  switch (spec.kind) {
    case 'vocab':
    case 'pattern':
    case 'quoted':
      return { type: 'string', ...base };
    case 'integer':
      return { type: 'integer', ...base };
    case 'number':
      return { type: 'number', ...base };
    case 'boolean':
      return { type: 'boolean', ...base };
    case 'enum':
      return { type: 'string', enum: [...spec.values], ...base };
    case 'list':
      return { type: 'array', items: schemaOf(spec.item), ...base };
    case 'object-list': {
      const properties = Object.fromEntries(Object.entries(spec.fields).map(([k, s]) => [k, schemaOf(s)]));
      return { type: 'array', items: { type: 'object', properties, required: Object.keys(spec.fields) }, ...base };
    }
    case 'object': {
      const properties = Object.fromEntries(Object.entries(spec.fields).map(([k, s]) => [k, schemaOf(s)]));
      return { type: 'object', properties, required: Object.keys(spec.fields), ...base };
    }
  }
}

function definitionOf(tool: ToolSpec): FunctionDefinition {
  return {
    name: tool.name,
    description: tool.description,
    parameters: {
      type: 'object',
      properties: Object.fromEntries(tool.params.map((param) => [param.name, schemaOf(param.spec, param.description)])),
      required: tool.params.filter((param) => param.required).map((param) => param.name),
    },
  };
}

const ENTITY_REGEXES: Readonly<Record<EntityKind, RegExp>> = {
  flight: new RegExp(`\\b${ENTITY_PATTERNS.flight}\\b`),
  product: new RegExp(`\\b${ENTITY_PATTERNS.product}\\b`),
  event: new RegExp(`\\b${ENTITY_PATTERNS.event}\\b`),
  restaurant: new RegExp(`\\b${ENTITY_PATTERNS.restaurant}\\b`),
};

/** The catalogue compiled: definitions, templates, and the parser that reads requests back. */
export class SimWorld {
  readonly tools: ReadonlyMap<string, ToolSpec>;
  readonly templates: readonly CompiledTemplate[];
  private readonly definitions = new Map<string, FunctionDefinition>();
  private readonly byFirstWord = new Map<string, CompiledTemplate[]>();
  private readonly chitchat: { regex: RegExp }[];
  private readonly sentenceCache = new BoundedCache<string, SentenceMatch | null>(200_000);

  constructor(catalogue: readonly ToolSpec[] = CATALOGUE) {
    const tools = new Map<string, ToolSpec>();
    const templates: CompiledTemplate[] = [];
    for (const tool of catalogue) {
      if (tools.has(tool.name)) throw new Error(`duplicate tool ${tool.name}`);
      tools.set(tool.name, tool);
      this.definitions.set(tool.name, definitionOf(tool));
      tool.templates.forEach((template, index) =>
        templates.push(compileTemplate(tool, index, template.text, template.refs ?? [])),
      );
    }
    this.tools = tools;
    this.templates = templates;
    for (const template of templates) {
      const word = firstWord(template.text);
      const list = this.byFirstWord.get(word) ?? [];
      list.push(template);
      this.byFirstWord.set(word, list);
    }
    this.chitchat = CHITCHAT_TEMPLATES.map((template) => {
      let source = '^';
      let last = 0;
      for (const match of template.text.matchAll(SLOT)) {
        source +=
          escapeRegex(template.text.slice(last, match.index)) +
          valuePattern(template.slots[match[1] as string] as ValueSpec);
        last = (match.index ?? 0) + match[0].length;
      }
      source += escapeRegex(template.text.slice(last)) + '$';
      return { regex: new RegExp(source, 'i') };
    });
  }

  /** The function definition the world offers for a tool (JSON Schema types, OpenAI-valid names). */
  definition(name: string): FunctionDefinition {
    const definition = this.definitions.get(name);
    if (!definition) throw new Error(`no tool ${name} in the sim world`);
    return definition;
  }

  /** The catalogue tool of this name, when the definition offered is the world's own (same name). */
  tool(name: string): ToolSpec | undefined {
    return this.tools.get(name);
  }

  /** Templates of one tool. */
  templatesOf(tool: string): CompiledTemplate[] {
    return this.templates.filter((t) => t.tool.name === tool);
  }

  /** What one sentence is (cached: requests repeat sentences constantly). */
  matchSentence(raw: string): SentenceMatch | null {
    const cached = this.sentenceCache.get(raw);
    if (cached !== undefined) return cached;
    return this.sentenceCache.set(raw, this.matchUncached(raw));
  }

  private matchUncached(raw: string): SentenceMatch | null {
    const sentence = raw.trim().replace(CONNECTOR, '');
    if (FILLERS.has(sentence)) return { kind: 'filler' };
    for (const template of this.byFirstWord.get(firstWord(sentence)) ?? []) {
      const m = template.regex.exec(sentence);
      if (!m) continue;
      const args: JsonObject = {};
      template.slotReaders.forEach(({ head, field, spec }, i) => {
        const value = parseValue(spec, m[i + 1] as string);
        if (field === undefined) args[head] = value;
        else {
          const obj = (args[head] as JsonObject | undefined) ?? {};
          obj[field] = value;
          args[head] = obj;
        }
      });
      return { kind: 'clause', template, args };
    }
    const index = this.chitchat.findIndex((c) => c.regex.test(sentence));
    return index >= 0 ? { kind: 'chitchat', index } : null;
  }

  /**
   * Reads a conversation: the last user turn's sentences, each a clause, chit-chat or filler. Undefined when there is
   * no user turn or a sentence is not the world's (a BFCL question, say).
   */
  analyze(input: SolveInput): WorldAnalysis | undefined {
    const { messages } = input;
    let last = messages.length - 1;
    while (last >= 0 && messages[last]?.role === 'system') last--;
    if (last < 0) return undefined;
    const tail = messages[last] as ChatMessage;
    const priorTurns = messages.slice(0, last).filter((m) => m.role !== 'system').length;
    if (tail.role === 'tool') {
      // The turn after a tool result is the assistant's answer in words.
      return { clauses: [], chitchat: 0, fillers: 0, priorTurns: priorTurns + 1, truth: 'no_call', dependent: false };
    }
    if (tail.role !== 'user') return undefined;
    const offered = new Set(input.tools.map((t) => t.name));
    const clauses: ClauseAnalysis[] = [];
    let chitchat = 0;
    let fillers = 0;
    for (const sentence of tail.content.split(SENTENCE_SPLIT)) {
      if (sentence.trim() === '') continue;
      const match = this.matchSentence(sentence);
      if (!match) return undefined;
      if (match.kind === 'filler') fillers++;
      else if (match.kind === 'chitchat') chitchat++;
      else {
        const args: JsonObject = { ...match.args };
        let resolved = true;
        const { refs, refEntities } = match.template;
        for (let i = 0; i < refs.length; i++) {
          const entity = refEntities[i];
          const value = entity ? findEntity(messages.slice(0, last), entity) : undefined;
          if (value === undefined) resolved = false;
          else args[refs[i] as string] = value;
        }
        clauses.push({
          template: match.template,
          call: { name: match.template.tool.name, arguments: orderArgs(match.template.tool, args) },
          offered: offered.has(match.template.tool.name),
          resolved,
        });
      }
    }
    const served = clauses.filter((c) => c.offered);
    let truth: WorldAnalysis['truth'];
    if (served.some((c) => !c.resolved)) truth = undefined;
    else if (served.length > 0) truth = served.map((c) => c.call);
    else if (clauses.length > 0 || chitchat > 0) truth = 'no_call';
    else truth = undefined;
    return { clauses, chitchat, fillers, priorTurns, truth, dependent: served.some((c) => c.template.refs.length > 0) };
  }

  /**
   * The true calls for a conversation's next assistant turn, recomputed from its text: the calls, `no_call` (no offered
   * tool fits, or the user only chats), or undefined when the text is not the world's.
   */
  solve(input: SolveInput): ToolCall[] | 'no_call' | undefined {
    return this.analyze(input)?.truth;
  }

  /** A clause plan with fresh values for every slot of a template (refs take the values given). */
  planClause(template: CompiledTemplate, rng: Rng, refs: Readonly<Record<string, JsonValue>> = {}): ClausePlan {
    const args: JsonObject = {};
    for (const { head, field, spec } of template.slotReaders) {
      const value = generateValue(spec, rng);
      if (field === undefined) args[head] = value;
      else {
        const obj = (args[head] as JsonObject | undefined) ?? {};
        obj[field] = value;
        args[head] = obj;
      }
    }
    for (const ref of template.refs) {
      const value = refs[ref];
      if (value === undefined) throw new Error(`${template.id} needs a value for ref ${ref}`);
      args[ref] = value;
    }
    return { template, args: orderArgs(template.tool, args) };
  }

  /** One sentence for a clause plan. */
  renderClause(plan: ClausePlan): string {
    return plan.template.text.replace(SLOT, (_, path: string) => {
      const [head, field] = path.split('.') as [string, string | undefined];
      const value = field === undefined ? plan.args[head] : (plan.args[head] as JsonObject)[field];
      return renderValue(specAt(plan.template.tool, path), value as JsonValue);
    });
  }

  /** A request of one or more clauses, joined with connectors ("Also, …"), between optional filler sentences. */
  renderRequest(
    plans: readonly ClausePlan[],
    rng: Rng,
    options: { before?: readonly string[]; after?: readonly string[] } = {},
  ): string {
    const sentences = plans.map((plan, index) => {
      const text = this.renderClause(plan);
      if (index === 0) return text;
      return `${rng.pick(CONNECTORS)}${text[0]?.toLowerCase()}${text.slice(1)}`;
    });
    return [...(options.before ?? []), ...sentences, ...(options.after ?? [])].join(' ');
  }

  /** A chit-chat request (no tool serves it). */
  renderChitchat(rng: Rng): string {
    const template = rng.pick(CHITCHAT_TEMPLATES);
    return template.text.replace(SLOT, (_, name: string) =>
      renderValue(template.slots[name] as ValueSpec, generateValue(template.slots[name] as ValueSpec, rng)),
    );
  }

  /** A fresh value for one parameter of a catalogue tool (for wrong values and corrupted labels). */
  generateParam(tool: ToolSpec, param: string, rng: Rng): JsonValue | undefined {
    const spec = tool.params.find((p) => p.name === param)?.spec;
    return spec ? generateValue(spec, rng) : undefined;
  }
}

function firstWord(sentence: string): string {
  const m = /^[A-Za-z']+/.exec(sentence);
  return (m?.[0] ?? '').toLowerCase();
}

/** Arguments in the order the tool declares its parameters, as a model writes them. */
function orderArgs(tool: ToolSpec, args: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const param of tool.params as readonly ParamSpec[])
    if (param.name in args) out[param.name] = args[param.name] as JsonValue;
  return out;
}

/** The first id of an entity in the most recent earlier turn that mentions one. */
function findEntity(messages: readonly ChatMessage[], entity: EntityKind): string | undefined {
  const regex = ENTITY_REGEXES[entity];
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i] as ChatMessage;
    if (message.role === 'system') continue;
    const text = message.content ?? '';
    const m = regex.exec(text);
    if (m) return m[0];
  }
  return undefined;
}

let shared: SimWorld | undefined;

/** The world built from the catalogue, compiled once per process. */
export function getWorld(): SimWorld {
  shared ??= new SimWorld();
  return shared;
}

/** The true calls for a conversation over the world's tools (see {@link SimWorld.solve}). */
export function solve(input: SolveInput): ToolCall[] | 'no_call' | undefined {
  return getWorld().solve(input);
}
