/**
 * The simulated EDDE generator: from a rendered generator prompt it writes a new sample over the seed's tools with
 * the seed's shape (same functions, call count, argument pattern, multi-turn or dependent structure) and fresh values,
 * whose calls are the truth for its conversation. A configurable share of outputs is flawed the ways LLM output is
 * (unknown parameter, missing required parameter, wrong type, unparseable JSON), so rule validation has work to do.
 */
import { numericValue, stringifyJson, type JsonObject } from '../core/json.js';
import { wireToolName, type FunctionDefinition } from '../core/schemas/function-def.js';
import type { GeneratorOutput, ScenarioFocus } from '../core/schemas/model-io.js';
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
import { CLOSING_FILLERS, GREETING_FILLERS, PERSONA_FILLERS } from './vocab.js';
import type { SimWorld } from './world.js';

export const GENERATOR_FLAWS = ['unknown_parameter', 'missing_required', 'wrong_type', 'unparseable'] as const;
export type GeneratorFlaw = (typeof GENERATOR_FLAWS)[number];

export interface GeneratorOptions {
  seed: number;
  /** Share of outputs with a flaw. @default 0.1 */
  flawRate?: number;
}

/** One generation: the JSON text returned, what it encodes, and the flaw put in, if any. */
export interface Generation {
  content: string;
  output?: GeneratorOutput;
  flaw?: GeneratorFlaw;
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

/** A flawed copy of the output, the way a generator's JSON goes wrong. */
function applyFlaw(
  flaw: Exclude<GeneratorFlaw, 'unparseable'>,
  output: GeneratorOutput,
  tools: readonly FunctionDefinition[],
  rng: Rng,
): GeneratorOutput {
  const calls = output.tool_calls.map((c) => ({ name: c.name, arguments: { ...c.arguments } }));
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
  return { conversation: output.conversation, tool_calls: calls };
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
    let generated: GeneratedConversation;
    if (shape) {
      // New values, not the seed again: templates with one small-vocabulary slot can redraw the seed's own request.
      const seedRequest = [...seed].reverse().find((m) => m.role === 'user')?.content;
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
    let output: GeneratorOutput = {
      conversation: generated.conversation,
      tool_calls: generated.calls.map((c) => ({ name: c.name, arguments: c.arguments as JsonObject })),
    };
    let flaw: GeneratorFlaw | undefined;
    if (uniform(this.options.seed, 'generator-flaw', promptKey, salt) < this.flawRate && output.tool_calls.length > 0) {
      flaw = rng.pick(GENERATOR_FLAWS);
      if (flaw !== 'unparseable') output = applyFlaw(flaw, output, tools, rng);
    }
    const full = stringifyJson(output, { separators: 'python' });
    if (flaw === 'unparseable')
      return { content: full.slice(0, Math.floor(full.length * (0.4 + 0.4 * rng.next()))), flaw, focus };
    return { content: full, output, ...(flaw ? { flaw } : {}), focus };
  }
}
