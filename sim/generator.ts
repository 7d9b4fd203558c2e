/**
 * The simulated EDDE generator: from a rendered generator prompt it writes a new sample over the seed's tools with
 * the seed's shape (same functions, call count, argument pattern, multi-turn or dependent structure) and fresh values,
 * whose calls are the truth for its conversation. A seed whose history holds tool calls with their results mostly gets
 * such a history too (the earlier call, its tool result, the assistant's summary); a seed whose correct answer is text
 * mostly gets a text-answer sample (a request no offered tool serves, answered in words). A configurable share of
 * outputs is flawed the ways LLM output is (unknown parameter, missing required parameter, wrong type, unparseable
 * JSON), in the answer's calls or, where there is one, in the history's earlier call, so rule validation has work to do.
 */
import { numericValue, stringifyJson, type JsonObject } from '../core/json.js';
import { wireToolName, type FunctionDefinition } from '../core/schemas/function-def.js';
import type { GeneratedCall, GeneratorOutput, ScenarioFocus } from '../core/schemas/model-io.js';
import { SCENARIO_FOCUSES } from '../core/schemas/model-io.js';
import type { ChatMessage } from '../core/schemas/messages.js';
import type { ToolCall } from '../core/schemas/tool-call.js';
import type { ToolSpec } from './catalogue.js';
import {
  composeLike,
  fallbackShape,
  type ComposeOptions,
  type GeneratedConversation,
  type SeedShape,
} from './compose.js';
import { inventCall } from './mutations.js';
import {
  parsePromptConversation,
  parsePromptResponse,
  parsePromptTools,
  promptParts,
  tagContent,
} from './prompt-parse.js';
import { hashHex, Rng, uniform } from './random.js';
import { CLOSING_FILLERS, GREETING_FILLERS, NO_TOOL_ANSWERS, PERSONA_FILLERS } from './vocab.js';
import type { SimWorld } from './world.js';

export const GENERATOR_FLAWS = ['unknown_parameter', 'missing_required', 'wrong_type', 'unparseable'] as const;
export type GeneratorFlaw = (typeof GENERATOR_FLAWS)[number];

export interface GeneratorOptions {
  seed: number;
  /** Share of outputs with a flaw. @default 0.1 */
  flawRate?: number;
}

/** Share of seeds with tool history whose sample writes its history with tool turns (the rest tell it in words). */
const TOOL_HISTORY_SHARE = 0.85;
/** Share of text-answer seeds whose sample answers in text (the rest call an offered tool, as before). */
const TEXT_ANSWER_SHARE = 0.75;
/** Share of flaws put into the history's earlier call, when the output has one. */
const HISTORY_FLAW_SHARE = 0.5;

/** One generation: the JSON text returned, what it encodes, and the flaw put in, if any, and where. */
export interface Generation {
  content: string;
  output?: GeneratorOutput;
  flaw?: GeneratorFlaw;
  /** Where a rule flaw went: the answer's calls or the history's earlier call. */
  flawAt?: 'target' | 'history';
  focus: ScenarioFocus | undefined;
}

/** The seed's shape as the world reads it; undefined when the seed is not the world's or asks for no call. */
function shapeOf(
  world: SimWorld,
  tools: readonly FunctionDefinition[],
  messages: readonly ChatMessage[],
  correct: ToolCall[] | undefined,
): SeedShape | undefined {
  const analysis = world.analyze({ tools, messages });
  const served = analysis?.clauses.filter((c) => c.offered) ?? [];
  if (analysis && served.length > 0) {
    const refClause = served.find((c) => c.template.refs.length > 0);
    const refParam = refClause?.template.tool.params.find((p) => p.name === refClause.template.refs[0]);
    const entity = refParam?.spec.kind === 'pattern' ? refParam.spec.entity : undefined;
    return {
      calls: served.map((c) => ({ tool: c.template.tool, params: c.template.params })),
      multiTurn: analysis.priorTurns > 0,
      ...(entity ? { dependentOn: entity } : {}),
    };
  }
  const known = (correct ?? [])
    .map((call) => ({ tool: world.tool(call.name), params: new Set(Object.keys(call.arguments)) }))
    .filter((c): c is { tool: ToolSpec; params: Set<string> } => c.tool !== undefined);
  if (known.length > 0) return { calls: known, multiTurn: messages.filter((m) => m.role === 'user').length > 1 };
  return undefined;
}

function fillersFor(focus: ScenarioFocus | undefined, rng: Rng): ComposeOptions {
  switch (focus) {
    case 'user_persona':
      return { before: [rng.pick(PERSONA_FILLERS)] };
    case 'interaction_style':
      return { before: [rng.pick(GREETING_FILLERS)], after: [rng.pick(CLOSING_FILLERS)] };
    default:
      return {};
  }
}

/** A flawed copy of a list of calls (the answer's or an earlier turn's), the way a generator's JSON goes wrong. */
function applyFlaw<C extends GeneratedCall>(
  flaw: Exclude<GeneratorFlaw, 'unparseable'>,
  original: readonly C[],
  tools: readonly FunctionDefinition[],
  rng: Rng,
): C[] {
  const calls = original.map((c) => ({ ...c, arguments: { ...c.arguments } }));
  const call = rng.pick(calls);
  const tool = tools.find((t) => wireToolName(t.name) === wireToolName(call.name));
  const properties = tool?.parameters?.properties ?? {};
  const required = (tool?.parameters?.required ?? []).filter((name) => name in call.arguments);
  if (flaw === 'missing_required' && required.length > 0) {
    delete call.arguments[rng.pick(required)];
  } else if (flaw === 'wrong_type' && Object.keys(call.arguments).length > 0) {
    const name = rng.pick(Object.keys(call.arguments));
    const value = call.arguments[name];
    const numeric = numericValue(value);
    if (numeric !== undefined) call.arguments[name] = String(numeric);
    else if (typeof value === 'boolean') call.arguments[name] = value ? 'yes' : 'no';
    else if (typeof value === 'string') call.arguments[name] = /^\d+$/.test(value) ? Number(value) : 42;
    else if (Array.isArray(value)) call.arguments[name] = value.map((v) => String(numericValue(v) ?? v)).join(', ');
    else call.arguments[name] = String(stringifyJson(value));
  } else {
    let name = 'notes';
    for (let i = 2; name in properties; i++) name = `notes_${i}`;
    call.arguments[name] = 'generated for variety';
  }
  return calls;
}

/**
 * The conversation with its earlier exchange written as tool turns, as the seed data writes history: the request, the
 * assistant's call, the tool's result (linked by id), the assistant's summary, then the rest. Undefined when there is
 * no earlier exchange or its function is not offered (the text form then stands).
 */
function withToolTurns(
  generated: GeneratedConversation,
  tools: readonly FunctionDefinition[],
): GeneratorOutput['conversation'] | undefined {
  const earlier = generated.earlier;
  if (!earlier || !tools.some((t) => wireToolName(t.name) === wireToolName(earlier.call.name))) return undefined;
  const [request, summary, ...rest] = generated.conversation;
  if (!request || !summary) return undefined;
  const id = 'call_0';
  return [
    request,
    {
      role: 'assistant',
      tool_calls: [{ id, name: earlier.call.name, arguments: earlier.call.arguments as JsonObject }],
    },
    { role: 'tool', tool_call_id: id, name: earlier.call.name, content: earlier.result },
    summary,
    ...rest,
  ];
}

/** The simulated generator model. */
export class SimGenerator {
  private readonly flawRate: number;

  constructor(
    private readonly world: SimWorld,
    private readonly options: GeneratorOptions,
  ) {
    this.flawRate = options.flawRate ?? 0.1;
  }

  /** Writes one new sample for a rendered generator prompt. `salt` varies sampled requests for the same prompt. */
  generate(messages: readonly { role: string; content: string }[], salt = ''): Generation {
    const { system, user } = promptParts(messages);
    const promptKey = hashHex(`${system}\u0000${user}`);
    const rng = new Rng(`${this.options.seed}|generator|${promptKey}|${salt}`);
    const tools = parsePromptTools(system) ?? [];
    const seed = parsePromptConversation(tagContent(user, 'seed_conversation')) ?? [];
    const correct = parsePromptResponse(tagContent(user, 'correct_response'));
    const focusText = tagContent(user, 'scenario_focus');
    const focus = SCENARIO_FOCUSES.find((f) => f === focusText);
    const shape =
      shapeOf(this.world, tools, seed, correct?.kind === 'calls' ? correct.calls : undefined) ??
      fallbackShape(this.world, tools, rng);
    const seedRequest = [...seed].reverse().find((m) => m.role === 'user')?.content;
    if (correct?.kind === 'text' && uniform(this.options.seed, 'generator-text', promptKey, salt) < TEXT_ANSWER_SHARE) {
      const output = this.textAnswer(tools, seedRequest, rng, focus);
      if (output) return { content: stringifyJson(output, { separators: 'python' }), output, focus };
    }
    let generated: GeneratedConversation;
    if (shape) {
      // New values, not the seed again: templates with one small-vocabulary slot can redraw the seed's own request.
      generated = composeLike(this.world, shape, rng, fillersFor(focus, rng));
      for (let retry = 0; retry < 5 && generated.conversation.at(-1)?.content === seedRequest; retry++) {
        generated = composeLike(this.world, shape, rng, fillersFor(focus, rng));
      }
    } else {
      // Tools the world does not know: restate the seed's request with the reference calls, as a weak generator would.
      const lastUser = [...seed].reverse().find((m) => m.role === 'user');
      const calls =
        correct?.kind === 'calls'
          ? correct.calls
          : tools[0]
            ? [inventCall({ tools, rng, world: this.world }, tools[0])]
            : [];
      generated = {
        conversation: [{ role: 'user', content: lastUser?.content || 'Please run the tool for me.' }],
        calls,
      };
    }
    // Mirror the seed's multi-step history: its earlier calls and their results as tool turns, not only in words.
    const seedHasToolHistory = seed.some((m) => m.role === 'assistant' && (m.tool_calls?.length ?? 0) > 0);
    const toolTurns =
      seedHasToolHistory && uniform(this.options.seed, 'generator-tool-history', promptKey, salt) < TOOL_HISTORY_SHARE
        ? withToolTurns(generated, tools)
        : undefined;
    let output: GeneratorOutput = {
      conversation: toolTurns ?? generated.conversation,
      tool_calls: generated.calls.map((c) => ({ name: c.name, arguments: c.arguments as JsonObject })),
    };
    let flaw: GeneratorFlaw | undefined;
    let flawAt: Generation['flawAt'];
    if (uniform(this.options.seed, 'generator-flaw', promptKey, salt) < this.flawRate && output.tool_calls.length > 0) {
      flaw = rng.pick(GENERATOR_FLAWS);
      if (flaw !== 'unparseable') {
        const historyTurn = output.conversation.findIndex((t) => t.role === 'assistant' && t.tool_calls?.length);
        if (historyTurn >= 0 && uniform(this.options.seed, 'generator-flaw-at', promptKey, salt) < HISTORY_FLAW_SHARE) {
          flawAt = 'history';
          const conversation = output.conversation.map((turn, index) =>
            index === historyTurn && turn.role === 'assistant'
              ? {
                  ...turn,
                  tool_calls: applyFlaw(
                    flaw as Exclude<GeneratorFlaw, 'unparseable'>,
                    turn.tool_calls ?? [],
                    tools,
                    rng,
                  ),
                }
              : turn,
          );
          output = { ...output, conversation };
        } else {
          flawAt = 'target';
          output = { ...output, tool_calls: applyFlaw(flaw, output.tool_calls, tools, rng) };
        }
      }
    }
    const full = stringifyJson(output, { separators: 'python' });
    if (flaw === 'unparseable')
      return { content: full.slice(0, Math.floor(full.length * (0.4 + 0.4 * rng.next()))), flaw, focus };
    return { content: full, output, ...(flaw ? { flaw } : {}), ...(flawAt ? { flawAt } : {}), focus };
  }

  /**
   * A text-answer sample for a seed whose correct answer is text: a request for a function none of the offered tools
   * (nor any of their domains) provides, or chit-chat, answered in words. Undefined when every draw restated the seed.
   */
  private textAnswer(
    tools: readonly FunctionDefinition[],
    seedRequest: string | undefined,
    rng: Rng,
    focus: ScenarioFocus | undefined,
  ): GeneratorOutput | undefined {
    const offered = new Set(tools.map((t) => wireToolName(t.name)));
    const domains = new Set(tools.map((t) => this.world.tool(t.name)?.domain));
    const others = [...this.world.tools.values()].filter(
      (t) => !offered.has(wireToolName(t.name)) && !domains.has(t.domain),
    );
    for (let attempt = 0; attempt < 5; attempt++) {
      const asked = others.length > 0 ? rng.pick(others) : undefined;
      const templates = asked ? this.world.templatesOf(asked.name).filter((t) => t.refs.length === 0) : [];
      const request =
        templates.length === 0 || rng.chance(0.3)
          ? this.world.renderChitchat(rng)
          : this.world.renderRequest([this.world.planClause(rng.pick(templates), rng)], rng, fillersFor(focus, rng));
      if (request !== seedRequest)
        return {
          conversation: [{ role: 'user', content: request }],
          tool_calls: [],
          content: rng.pick(NO_TOOL_ANSWERS),
        };
    }
    return undefined;
  }
}
