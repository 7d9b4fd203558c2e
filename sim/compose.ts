/**
 * Composes whole conversations over the world: the seed data generator and the simulated EDDE generator both build
 * samples here, so every sample the sim writes is one the world can solve.
 */
import { JsonFloat, stringifyJson, type JsonObject, type JsonValue } from '../core/json.js';
import type { FunctionDefinition } from '../core/schemas/function-def.js';
import type { ChatMessage } from '../core/schemas/messages.js';
import type { ToolCall } from '../core/schemas/tool-call.js';
import { ENTITY_PATTERNS, type EntityKind, type ToolSpec } from './catalogue.js';
import type { Rng } from './random.js';
import { NO_TOOL_ANSWERS } from './vocab.js';
import type { ClausePlan, CompiledTemplate, SimWorld } from './world.js';

/** The structural kinds of sample the world composes (BFCL's categories plus multi-turn ones). */
export const PROFILES = [
  'single',
  'multiple',
  'parallel',
  'parallel_multiple',
  'multi_turn',
  'dependent',
  'irrelevance',
] as const;
export type Profile = (typeof PROFILES)[number];

/** How often each profile appears in seed data. */
export const PROFILE_WEIGHTS: readonly (readonly [Profile, number])[] = [
  ['single', 0.2],
  ['multiple', 0.2],
  ['parallel', 0.12],
  ['parallel_multiple', 0.12],
  ['multi_turn', 0.12],
  ['dependent', 0.12],
  ['irrelevance', 0.12],
];

/** A composed conversation and its true next turn. */
export interface ComposedSample {
  profile: Profile;
  tools: FunctionDefinition[];
  /** System prompt (optional), earlier turns, then the user request. */
  messages: ChatMessage[];
  truth: ToolCall[] | 'no_call';
  /** The reference answer in words when the truth is no call. */
  text?: string;
}

export interface ComposeOptions {
  /** Put a system prompt with the conversation date first. @default true */
  systemPrompt?: boolean;
  /** Sentences said before and after the request (persona, greeting, thanks). */
  before?: readonly string[];
  after?: readonly string[];
}

const PRODUCERS: Readonly<Record<EntityKind, { tool: string; consumer: string; listKey: string; noun: string }>> = {
  flight: { tool: 'search_flights', consumer: 'book_flight', listKey: 'flights', noun: 'flights' },
  product: { tool: 'search_products', consumer: 'add_to_cart', listKey: 'products', noun: 'products' },
  event: { tool: 'list_events', consumer: 'cancel_event', listKey: 'events', noun: 'events' },
  restaurant: { tool: 'find_restaurants', consumer: 'make_reservation', listKey: 'restaurants', noun: 'restaurants' },
};

/** The system prompt of composed samples: LoopTool's records carry the date this way ("The current time is …"). */
export function systemPromptFor(rng: Rng): string {
  const month = String(rng.int(1, 12)).padStart(2, '0');
  const day = String(rng.int(1, 28)).padStart(2, '0');
  return `You are a helpful assistant with access to tools. Call them when they fit the request. The current time is 2025-${month}-${day} 09:00.`;
}

/** Templates that take every argument from the text (no refs). */
function standalone(world: SimWorld, tool: string): CompiledTemplate[] {
  return world.templatesOf(tool).filter((t) => t.refs.length === 0);
}

function randomTool(world: SimWorld, rng: Rng, exclude: ReadonlySet<string> = new Set()): ToolSpec {
  const candidates = [...world.tools.values()].filter((t) => !exclude.has(t.name));
  return rng.pick(candidates);
}

/** Distractor tools: some from the same domain (the hard case), the rest from anywhere. */
function distractors(world: SimWorld, rng: Rng, chosen: readonly ToolSpec[], count: number): ToolSpec[] {
  const taken = new Set(chosen.map((t) => t.name));
  const domains = new Set(chosen.map((t) => t.domain));
  const sameDomain = rng.shuffle([...world.tools.values()].filter((t) => !taken.has(t.name) && domains.has(t.domain)));
  const out: ToolSpec[] = [];
  for (const tool of sameDomain.slice(0, Math.min(2, count))) {
    out.push(tool);
    taken.add(tool.name);
  }
  while (out.length < count) {
    const tool = randomTool(world, rng, taken);
    out.push(tool);
    taken.add(tool.name);
  }
  return out;
}

/** A tool result and the assistant's summary of it; producers return entity ids the next turn may refer to. */
export function toolResultFor(world: SimWorld, plan: ClausePlan, rng: Rng): { content: string; summary: string } {
  const produced = plan.template.tool.produces;
  if (!produced) {
    return {
      content: stringifyJson({ status: 'ok', tool: plan.template.tool.name }, { separators: 'python' }),
      summary: 'Done, that went through. Anything else?',
    };
  }
  const meta = PRODUCERS[produced];
  const consumer = world.tool(meta.consumer) as ToolSpec;
  const idParam = consumer.params.find((p) => p.spec.kind === 'pattern' && p.spec.entity === produced);
  const count = rng.int(2, 3);
  const items: JsonObject[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const id = idParam ? (world.generateParam(consumer, idParam.name, rng) as string) : `ID-${i}`;
    ids.push(id);
    const at = `${String(rng.int(6, 21)).padStart(2, '0')}:${rng.pick(['00', '15', '30', '45'])}`;
    items.push({ [idParam?.name ?? 'id']: id, time: at, price: new JsonFloat(Math.round(rng.next() * 50000) / 100) });
  }
  const content = stringifyJson({ [meta.listKey]: items }, { separators: 'python' });
  const listed = ids.map((id, i) => `${id} at ${String(items[i]?.time)}`);
  const summary = `I found ${count} ${meta.noun}: ${listed.slice(0, -1).join(', ')} and ${listed[listed.length - 1]}.`;
  return { content, summary };
}

/** The first entity id a producer's result lists (what "the first one" refers to). */
function firstEntity(content: string, entity: EntityKind): string {
  const m = new RegExp(`\\b${ENTITY_PATTERNS[entity]}\\b`).exec(content);
  if (!m) throw new Error(`no ${entity} id in ${content}`);
  return m[0];
}

/** An earlier exchange: the user's request, the assistant's call, the tool's result and the assistant's summary. */
function exchange(
  world: SimWorld,
  plan: ClausePlan,
  rng: Rng,
  callId: string,
): { messages: ChatMessage[]; result: string } {
  const call = { name: plan.template.tool.name, arguments: plan.args };
  const result = toolResultFor(world, plan, rng);
  return {
    result: result.content,
    messages: [
      { role: 'user', content: world.renderClause(plan) },
      { role: 'assistant', content: null, tool_calls: [{ id: callId, type: 'function', function: call }] },
      { role: 'tool', content: result.content, tool_call_id: callId, name: call.name },
      { role: 'assistant', content: result.summary },
    ],
  };
}

function definitions(world: SimWorld, tools: readonly ToolSpec[]): FunctionDefinition[] {
  return tools.map((t) => world.definition(t.name));
}

/**
 * One sample of a profile with fresh values. The truth is the plan the text was rendered from; `solve` on the result
 * gives it back (the unit tests hold the world to that).
 */
export function composeSample(
  world: SimWorld,
  profile: Profile,
  rng: Rng,
  options: ComposeOptions = {},
): ComposedSample {
  const system: ChatMessage[] =
    options.systemPrompt === false ? [] : [{ role: 'system', content: systemPromptFor(rng) }];
  const request = (plans: readonly ClausePlan[]): string =>
    world.renderRequest(plans, rng, { before: options.before ?? [], after: options.after ?? [] });
  const callsOf = (plans: readonly ClausePlan[]): ToolCall[] =>
    plans.map((plan) => ({ name: plan.template.tool.name, arguments: plan.args }));
  switch (profile) {
    case 'single':
    case 'multiple': {
      const tool = randomTool(world, rng);
      const plan = world.planClause(rng.pick(standalone(world, tool.name)), rng);
      const offered =
        profile === 'single' ? [tool] : rng.shuffle([tool, ...distractors(world, rng, [tool], rng.int(1, 4))]);
      return {
        profile,
        tools: definitions(world, offered),
        messages: [...system, { role: 'user', content: request([plan]) }],
        truth: callsOf([plan]),
      };
    }
    case 'parallel': {
      const tool = randomTool(world, rng);
      const plans = Array.from({ length: rng.int(2, 3) }, () =>
        world.planClause(rng.pick(standalone(world, tool.name)), rng),
      );
      return {
        profile,
        tools: definitions(world, [tool]),
        messages: [...system, { role: 'user', content: request(plans) }],
        truth: callsOf(plans),
      };
    }
    case 'parallel_multiple': {
      const count = rng.int(2, 3);
      const chosen: ToolSpec[] = [];
      while (chosen.length < count) chosen.push(randomTool(world, rng, new Set(chosen.map((t) => t.name))));
      const plans = chosen.map((tool) => world.planClause(rng.pick(standalone(world, tool.name)), rng));
      const offered = rng.shuffle([...chosen, ...distractors(world, rng, chosen, rng.int(0, 2))]);
      return {
        profile,
        tools: definitions(world, offered),
        messages: [...system, { role: 'user', content: request(plans) }],
        truth: callsOf(plans),
      };
    }
    case 'multi_turn': {
      const first = randomTool(world, rng);
      const earlier = world.planClause(rng.pick(standalone(world, first.name)), rng);
      const next = rng.chance(0.3) ? first : randomTool(world, rng, new Set([first.name]));
      const plans = Array.from({ length: rng.chance(0.2) ? 2 : 1 }, () =>
        world.planClause(rng.pick(standalone(world, next.name)), rng),
      );
      const chosen = first === next ? [first] : [first, next];
      const offered = rng.shuffle([...chosen, ...distractors(world, rng, chosen, rng.int(0, 2))]);
      const history = exchange(world, earlier, rng, 'call_0');
      return {
        profile,
        tools: definitions(world, offered),
        messages: [...system, ...history.messages, { role: 'user', content: request(plans) }],
        truth: callsOf(plans),
      };
    }
    case 'dependent': {
      const entity = rng.pick(Object.keys(PRODUCERS) as EntityKind[]);
      const meta = PRODUCERS[entity];
      const producer = world.tool(meta.tool) as ToolSpec;
      const consumer = world.tool(meta.consumer) as ToolSpec;
      const earlier = world.planClause(rng.pick(standalone(world, producer.name)), rng);
      const history = exchange(world, earlier, rng, 'call_0');
      const refTemplate = rng.pick(world.templatesOf(consumer.name).filter((t) => t.refs.length > 0));
      const refs = Object.fromEntries(refTemplate.refs.map((ref) => [ref, firstEntity(history.result, entity)]));
      const plan = world.planClause(refTemplate, rng, refs);
      const offered = rng.shuffle([
        producer,
        consumer,
        ...distractors(world, rng, [producer, consumer], rng.int(0, 1)),
      ]);
      return {
        profile,
        tools: definitions(world, offered),
        messages: [...system, ...history.messages, { role: 'user', content: request([plan]) }],
        truth: callsOf([plan]),
      };
    }
    case 'irrelevance': {
      const asked = randomTool(world, rng);
      const others = [...world.tools.values()].filter((t) => t.domain !== asked.domain);
      const offered = rng.sample(others, rng.int(1, 3));
      const content = rng.chance(0.3)
        ? world.renderChitchat(rng)
        : request([world.planClause(rng.pick(standalone(world, asked.name)), rng)]);
      return {
        profile,
        tools: definitions(world, offered),
        messages: [...system, { role: 'user', content }],
        truth: 'no_call',
        text: rng.pick(NO_TOOL_ANSWERS),
      };
    }
  }
}

/** What a generator keeps from a seed: the tools called, how many calls, and the conversation's shape. */
export interface SeedShape {
  /** Called tools, one entry per call (repeats mean parallel calls of one tool). */
  calls: readonly { tool: ToolSpec; params: ReadonlySet<string> }[];
  multiTurn: boolean;
  /** The entity a ref in the seed's request took from an earlier turn. */
  dependentOn?: EntityKind;
}

/** A generated conversation (user and assistant text turns ending with the user's request) and its true calls. */
export interface GeneratedConversation {
  conversation: { role: 'user' | 'assistant'; content: string }[];
  calls: ToolCall[];
  /**
   * The earlier exchange a multi-turn or dependent conversation opens with (its request is `conversation[0]`, the
   * assistant's summary `conversation[1]`): the call that served it and the tool's result, for a generator that writes
   * the history with its tool turns.
   */
  earlier?: { call: ToolCall; result: string };
}

/**
 * A new conversation of the seed's shape with fresh values: the same tools called the same number of times, templates
 * carrying the same arguments where one does, and the same multi-turn or dependent structure, told in text turns (an
 * earlier result lives in the assistant's summary); `earlier` holds that turn's call and result for a generator that
 * writes the history with its tool turns, as the seed data does.
 */
export function composeLike(
  world: SimWorld,
  shape: SeedShape,
  rng: Rng,
  options: ComposeOptions = {},
): GeneratedConversation {
  const pickTemplate = (tool: ToolSpec, params: ReadonlySet<string>): CompiledTemplate => {
    const templates = standalone(world, tool.name);
    const same = templates.filter((t) => t.params.size === params.size && [...t.params].every((p) => params.has(p)));
    return rng.pick(same.length > 0 ? same : templates);
  };
  const conversation: GeneratedConversation['conversation'] = [];
  if (shape.dependentOn && shape.calls.length === 1) {
    const meta = PRODUCERS[shape.dependentOn];
    const producer = world.tool(meta.tool) as ToolSpec;
    const consumer = (shape.calls[0] as { tool: ToolSpec }).tool;
    const earlier = world.planClause(rng.pick(standalone(world, producer.name)), rng);
    const result = toolResultFor(world, earlier, rng);
    conversation.push(
      { role: 'user', content: world.renderClause(earlier) },
      { role: 'assistant', content: result.summary },
    );
    const earlierCall = { call: { name: producer.name, arguments: earlier.args }, result: result.content };
    const refTemplate = world.templatesOf(consumer.name).find((t) => t.refs.length > 0);
    if (refTemplate) {
      const plan = world.planClause(
        refTemplate,
        rng,
        Object.fromEntries(
          refTemplate.refs.map((ref) => [ref, firstEntity(result.content, shape.dependentOn as EntityKind)]),
        ),
      );
      conversation.push({ role: 'user', content: world.renderRequest([plan], rng, options) });
      return { conversation, calls: [{ name: consumer.name, arguments: plan.args }], earlier: earlierCall };
    }
  }
  const plans = shape.calls.map((call) => world.planClause(pickTemplate(call.tool, call.params), rng));
  let earlierCall: GeneratedConversation['earlier'];
  if (shape.multiTurn) {
    const earlierTool = (shape.calls[0] as { tool: ToolSpec }).tool;
    const earlier = world.planClause(rng.pick(standalone(world, earlierTool.name)), rng);
    const result = toolResultFor(world, earlier, rng);
    conversation.push(
      { role: 'user', content: world.renderClause(earlier) },
      { role: 'assistant', content: result.summary },
    );
    earlierCall = { call: { name: earlierTool.name, arguments: earlier.args }, result: result.content };
  }
  conversation.push({ role: 'user', content: world.renderRequest(plans, rng, options) });
  return {
    conversation,
    calls: plans.map((plan) => ({ name: plan.template.tool.name, arguments: plan.args })),
    ...(earlierCall ? { earlier: earlierCall } : {}),
  };
}

/** A shape for a seed the generator could not read: one call of a random offered catalogue tool. */
export function fallbackShape(world: SimWorld, tools: readonly { name: string }[], rng: Rng): SeedShape | undefined {
  const known = tools.map((t) => world.tool(t.name)).filter((t): t is ToolSpec => t !== undefined);
  if (known.length === 0) return undefined;
  const tool = rng.pick(known);
  return { calls: [{ tool, params: rng.pick(standalone(world, tool.name)).params }], multiTurn: false };
}

/** The JSON value of a call list, for comparisons in tests and reports. */
export function callsJson(calls: readonly ToolCall[]): JsonValue {
  return calls.map((c) => ({ name: c.name, arguments: c.arguments }));
}
