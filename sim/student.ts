/**
 * The simulated policy. For each request it finds the truth (world or BFCL), computes the chance of answering right
 * from the skills the sample needs and the loaded checkpoint's exposure, and decides with a deterministic uniform draw
 * from the sample's content, the checkpoint and the seed. Wrong answers follow from the skill that failed.
 */
import type { FunctionDefinition } from '../core/schemas/function-def.js';
import type { ChatMessage } from '../core/schemas/messages.js';
import type { ToolCall } from '../core/schemas/tool-call.js';
import { renderAssistantText } from '../core/formats/qwen.js';
import {
  inventCall,
  mutateCalls,
  type AnswerErrorKind,
  type CallErrorKind,
  type MutationContext,
} from './mutations.js';
import { BoundedCache, Rng, uniform } from './random.js';
import {
  DEFAULT_LEARNING,
  EMPTY_EXPOSURE,
  failingSkill,
  skillsOf,
  successProbability,
  type Exposure,
  type LearningParams,
  type Skill,
} from './skills.js';
import { replyOf, type Response, type Truth, type TruthResolver } from './truth.js';
import type { MultiTurnOracle, MultiTurnPosition } from './bfcl-oracle.js';
import { NO_TOOL_ANSWERS } from './vocab.js';

/** What the student is at the moment: the base model, or an adapter trained to some exposure. */
export interface StudentCheckpoint {
  id: string;
  exposure: Exposure;
}

export const BASE_CHECKPOINT: StudentCheckpoint = { id: 'base', exposure: EMPTY_EXPOSURE };

export interface StudentOptions {
  seed: number;
  learning?: Partial<LearningParams>;
  /**
   * The share of samples whose draw is redone per checkpoint. The rest keep the same draw across checkpoints, so a
   * sample a checkpoint masters usually stays mastered as competence rises, as it does in real training. @default 0.2
   */
  checkpointNoise?: number;
  /** BFCL's multi-turn questions (from bfcl-eval's data folder), loaded on first need; absent: none known. */
  multiTurn?: () => MultiTurnOracle | undefined;
}

export type StudentOutput =
  { kind: 'calls'; calls: ToolCall[] } | { kind: 'text'; text: string } | { kind: 'malformed'; text: string };

export interface StudentAnswer {
  output: StudentOutput;
  /** Whether the output is right by the checker; undefined when the sim does not know the truth. */
  correct: boolean | undefined;
  errorKind?: AnswerErrorKind;
  failingSkill?: Skill;
  /** The chance of a right answer and the draw that decided. */
  p: number;
  u: number;
  /** The mean token logprob to report: near 0 when far from the decision boundary, lower near it. */
  meanLogprob: number;
  skills: Skill[];
}

interface Analysis {
  truth: Truth | undefined;
  skills: Skill[];
}

const CLARIFICATIONS = [
  'Could you confirm the details before I go ahead?',
  'I need a bit more information to do that. Which option would you like?',
  'Sure, I can help with that. Shall I go ahead with those details?',
] as const;

/** The failure a skill's weakness shows as. */
function errorForSkill(
  skill: Skill,
  rng: Rng,
): { kind: CallErrorKind | 'malformed_json' | 'text_instead_of_call'; preferType?: MutationContext['preferType'] } {
  switch (skill) {
    case 'no_call':
      return { kind: 'hallucinated_call' };
    case 'parallel':
    case 'parallel3':
    case 'parallel_multiple':
      return { kind: 'dropped_call' };
    case 'select':
    case 'many_tools':
      return { kind: 'wrong_function' };
    case 'float':
    case 'boolean':
    case 'enum':
    case 'array':
    case 'object':
      return { kind: 'wrong_value', preferType: skill };
    case 'optional':
      return rng.chance(0.5) ? { kind: 'extra_argument' } : { kind: 'missing_argument', preferType: 'optional' };
    case 'multi_turn':
    case 'dependent':
      return rng.chance(0.5) ? { kind: 'wrong_value' } : { kind: 'text_instead_of_call' };
    case 'call':
    case 'unfamiliar':
      return {
        kind: rng.weighted([
          ['wrong_value', 0.35],
          ['missing_argument', 0.2],
          ['extra_argument', 0.1],
          ['malformed_json', 0.15],
          ['text_instead_of_call', 0.2],
        ] as const),
      };
  }
}

/** A `<tool_call>` block with its JSON cut or mangled, as a model emits when decoding goes astray. */
function malformed(calls: readonly ToolCall[], rng: Rng): string {
  const text = renderAssistantText(null, calls.length > 0 ? calls : [{ name: 'unknown', arguments: {} }]);
  const variant = rng.int(0, 2);
  if (variant === 0) return text.replace(/\}\n<\/tool_call>/, '\n</tool_call>');
  if (variant === 1) return text.replace('"arguments": ', '"arguments": {').replace(/"(\w+)": /, "'$1': ");
  const close = text.lastIndexOf('</tool_call>');
  return text.slice(0, Math.max(0, close - 3));
}

/** The simulated policy model. */
export class SimStudent {
  private readonly learning: LearningParams;
  private readonly analyses = new BoundedCache<string, Analysis>(100_000);
  private readonly checkpointNoise: number;

  constructor(
    private readonly resolver: TruthResolver,
    private readonly options: StudentOptions,
  ) {
    this.learning = {
      ...DEFAULT_LEARNING,
      ...options.learning,
      base: { ...DEFAULT_LEARNING.base, ...options.learning?.base },
    };
    this.checkpointNoise = options.checkpointNoise ?? 0.2;
  }

  /** The learning parameters in force. */
  get params(): LearningParams {
    return this.learning;
  }

  private analyze(key: string, tools: readonly FunctionDefinition[], messages: readonly ChatMessage[]): Analysis {
    const cached = this.analyses.get(key);
    if (cached) return cached;
    const truth = this.resolver.resolve(tools, messages);
    return this.analyses.set(key, { truth, skills: truth ? this.resolver.skills(truth, tools) : [] });
  }

  /**
   * Answers one request. `key` identifies the sample's content (the same conversation and tools give the same key);
   * `salt` is empty for greedy decoding and varies per sampled request.
   */
  answer(
    input: { key: string; tools: readonly FunctionDefinition[]; messages: readonly ChatMessage[] },
    checkpoint: StudentCheckpoint,
    salt = '',
  ): StudentAnswer {
    const { seed } = this.options;
    // A BFCL multi-turn question has more than one user turn (its first turn alone is looked up too: the harness
    // sends it before any other); the world and the single-turn oracle never know those.
    const position = this.multiTurnOracle()?.lookup(input.tools, input.messages);
    if (position) return this.answerMultiTurn(position, input.tools, checkpoint, salt);
    const { truth, skills } = this.analyze(input.key, input.tools, input.messages);
    const own = uniform(seed, 'student', input.key, salt);
    const redraw = uniform(seed, 'student-redraw', input.key, checkpoint.id, salt) < this.checkpointNoise;
    const u = redraw ? uniform(seed, 'student-checkpoint', input.key, checkpoint.id, salt) : own;
    const rng = new Rng(`${seed}|answer|${input.key}|${checkpoint.id}|${salt}`);
    if (!truth) {
      const tool = input.tools[0];
      const ctx: MutationContext = { tools: input.tools, rng, world: this.resolver.world };
      const output: StudentOutput =
        tool && rng.chance(0.7)
          ? { kind: 'calls', calls: [inventCall(ctx, tool)] }
          : { kind: 'text', text: rng.pick(CLARIFICATIONS) };
      return { output, correct: undefined, p: 0, u, meanLogprob: -0.9, skills };
    }
    const p = successProbability(skills, checkpoint.exposure, this.learning);
    if (u < p) {
      const output: StudentOutput =
        truth.calls === 'no_call'
          ? { kind: 'text', text: rng.pick(NO_TOOL_ANSWERS) }
          : { kind: 'calls', calls: truth.calls };
      return { output, correct: true, p, u, meanLogprob: -(0.01 + 0.5 * Math.exp(-(p - u) / 0.06)), skills };
    }
    const failed = failingSkill(
      skills,
      checkpoint.exposure,
      uniform(seed, 'student-skill', input.key, checkpoint.id, salt),
      this.learning,
    );
    const meanLogprob = -(0.25 + 0.9 * Math.exp(-(u - p) / 0.08));
    const wrong = this.wrongAnswer(truth, input.tools, failed, rng, input.key);
    return {
      output: wrong.output,
      correct: false,
      errorKind: wrong.kind,
      failingSkill: failed,
      p,
      u,
      meanLogprob,
      skills,
    };
  }

  private multiTurnLoaded = false;
  private multiTurnCache: MultiTurnOracle | undefined;

  private multiTurnOracle(): MultiTurnOracle | undefined {
    if (!this.multiTurnLoaded) {
      this.multiTurnCache = this.options.multiTurn?.();
      this.multiTurnLoaded = true;
    }
    return this.multiTurnCache;
  }

  /**
   * One step of a BFCL multi-turn question, played by BFCL's harness against its executable backends. A turn is
   * answered in one step with all its true calls (the harness executes them in order, so later calls see earlier
   * effects), and the step after the results ends the turn with text. Whether a turn is right is drawn once per
   * (question, turn, checkpoint) from the skills its calls need; the calls of a turn are sequential steps in one
   * environment, not parallel calls, and the backends' many tools are the setting, not a selection among
   * distractors, so those skills do not count. A wrong turn drops its last call, gets a value wrong, or asks back
   * instead of acting; a turn that needs no call (a missing function or parameter) is wrong when it calls anyway.
   */
  private answerMultiTurn(
    position: MultiTurnPosition,
    tools: readonly FunctionDefinition[],
    checkpoint: StudentCheckpoint,
    salt: string,
  ): StudentAnswer {
    const { seed } = this.options;
    const { entry, turn, calledThisTurn } = position;
    const key = `mt|${entry.id}|${turn}`;
    const truth = entry.calls[turn] ?? [];
    const sequential: ReadonlySet<Skill> = new Set(['parallel', 'parallel3', 'parallel_multiple', 'many_tools']);
    const skills = skillsOf({
      tools,
      truth: truth.length > 0 ? truth : 'no_call',
      priorTurns: turn,
      dependent: false,
      unfamiliar: true,
    }).filter((skill) => !sequential.has(skill));
    const p = successProbability(skills, checkpoint.exposure, this.learning);
    if (calledThisTurn)
      return { output: { kind: 'text', text: 'Done.' }, correct: true, p, u: 0, meanLogprob: -0.05, skills };
    const own = uniform(seed, 'student', key, salt);
    const redraw = uniform(seed, 'student-redraw', key, checkpoint.id, salt) < this.checkpointNoise;
    const u = redraw ? uniform(seed, 'student-checkpoint', key, checkpoint.id, salt) : own;
    const rng = new Rng(`${seed}|answer|${key}|${checkpoint.id}|${salt}`);
    if (u < p) {
      const output: StudentOutput =
        truth.length === 0 ? { kind: 'text', text: rng.pick(CLARIFICATIONS) } : { kind: 'calls', calls: truth };
      return { output, correct: true, p, u, meanLogprob: -(0.01 + 0.5 * Math.exp(-(p - u) / 0.06)), skills };
    }
    const meanLogprob = -(0.25 + 0.9 * Math.exp(-(u - p) / 0.08));
    const ctx: MutationContext = { tools, rng, world: this.resolver.world };
    const wrong = (output: StudentOutput, errorKind: AnswerErrorKind): StudentAnswer => ({
      output,
      correct: false,
      errorKind,
      p,
      u,
      meanLogprob,
      skills,
    });
    if (truth.length === 0) {
      const tool = tools[rng.int(0, Math.max(0, tools.length - 1))];
      return tool
        ? wrong({ kind: 'calls', calls: [inventCall(ctx, tool)] }, 'hallucinated_call')
        : wrong({ kind: 'text', text: rng.pick(CLARIFICATIONS) }, 'text_instead_of_call');
    }
    const choice = rng.int(0, 2);
    if (choice === 0 && truth.length > 1) return wrong({ kind: 'calls', calls: truth.slice(0, -1) }, 'dropped_call');
    if (choice === 1) {
      const calls = mutateCalls('wrong_value', truth, ctx);
      if (calls && calls.length > 0) return wrong({ kind: 'calls', calls }, 'wrong_value');
    }
    return wrong({ kind: 'text', text: rng.pick(CLARIFICATIONS) }, 'text_instead_of_call');
  }

  private wrongAnswer(
    truth: Truth,
    tools: readonly FunctionDefinition[],
    failed: Skill,
    rng: Rng,
    key: string,
  ): { output: StudentOutput; kind: AnswerErrorKind } {
    const truthCalls = truth.calls === 'no_call' ? [] : truth.calls;
    const ctx: MutationContext = { tools, rng, world: this.resolver.world };
    const wanted = errorForSkill(failed, rng);
    const attempts: (CallErrorKind | 'malformed_json' | 'text_instead_of_call')[] = [
      wanted.kind,
      'wrong_value',
      'missing_argument',
      'hallucinated_call',
      'text_instead_of_call',
    ];
    for (const kind of attempts) {
      if (kind === 'malformed_json') return { output: { kind: 'malformed', text: malformed(truthCalls, rng) }, kind };
      if (kind === 'text_instead_of_call') {
        if (truth.calls === 'no_call') continue;
        return { output: { kind: 'text', text: rng.pick(CLARIFICATIONS) }, kind };
      }
      if (truth.calls === 'no_call' && kind !== 'hallucinated_call') continue;
      if (truth.calls !== 'no_call' && kind === 'hallucinated_call') continue;
      const calls = mutateCalls(kind, truthCalls, {
        ...ctx,
        ...(kind === wanted.kind && wanted.preferType ? { preferType: wanted.preferType } : {}),
      });
      if (!calls || calls.length === 0) continue;
      const response: Response = { kind: 'calls', calls };
      // A slip can land on another acceptable answer (BFCL allows several values); then it is not an error.
      if (this.resolver.isCorrect(truth, tools, replyOf(response), key)) continue;
      return { output: response, kind };
    }
    return { output: { kind: 'text', text: rng.pick(CLARIFICATIONS) }, kind: 'text_instead_of_call' };
  }
}
