/**
 * The simulated judge (JGLV) and validation judge (EDDE's LLM tier). Both know the truth, including for labels the
 * seed data corrupted on purpose, and answer right with a configured accuracy; their analyses name the real difference.
 */
import type { JudgeOutput, ValidatorOutput } from '../core/schemas/model-io.js';
import type { FunctionDefinition } from '../core/schemas/function-def.js';
import type { ChatMessage } from '../core/schemas/messages.js';
import { canonicalJson } from '../core/json.js';
import { correctApproach, errorAnalysis } from './explain.js';
import {
  parsePromptConversation,
  parsePromptResponse,
  parsePromptTools,
  promptParts,
  tagContent,
} from './prompt-parse.js';
import { hashHex, uniform } from './random.js';
import { replyOf, type Response, type Truth, type TruthResolver } from './truth.js';

type Verdict = JudgeOutput['verdict'];

export interface JudgeOptions {
  seed: number;
  /** Chance that one judge vote is right. @default 0.9 */
  judgeAccuracy?: number;
  /** Chance that one validation verdict is right. @default judgeAccuracy */
  validatorAccuracy?: number;
  /**
   * How much sampled votes on the same prompt agree beyond chance: the share of votes that reuse the prompt's own
   * draw, so a case the judge finds hard tends to fool several votes. Each vote is still right with `judgeAccuracy`.
   * @default 0.5
   */
  voteCorrelation?: number;
}

/** Outcome of one judged request, for stats and tests. */
export interface JudgeDecision<T> {
  output: T;
  /** The verdict the truth calls for; undefined when the sim does not know the truth. */
  trueVerdict: string | undefined;
  truthKnown: boolean;
}

// When the judge errs, the mistakes it makes: mostly confusing which response is wrong, sometimes calling both fine.
const CONFUSIONS: Readonly<Record<Verdict, readonly Verdict[]>> = {
  RESPONSE1_INCORRECT: ['RESPONSE2_INCORRECT', 'BOTH_CORRECT', 'BOTH_INCORRECT'],
  RESPONSE2_INCORRECT: ['RESPONSE1_INCORRECT', 'BOTH_CORRECT', 'BOTH_INCORRECT'],
  BOTH_CORRECT: ['RESPONSE2_INCORRECT', 'RESPONSE1_INCORRECT', 'BOTH_INCORRECT'],
  BOTH_INCORRECT: ['RESPONSE2_INCORRECT', 'RESPONSE1_INCORRECT', 'BOTH_CORRECT'],
};

function verdictOf(ok1: boolean, ok2: boolean): Verdict {
  if (ok1 && ok2) return 'BOTH_CORRECT';
  if (ok1) return 'RESPONSE2_INCORRECT';
  if (ok2) return 'RESPONSE1_INCORRECT';
  return 'BOTH_INCORRECT';
}

function sameResponse(a: Response, b: Response): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** The simulated judge model: JGLV verdicts and EDDE validation verdicts from rendered prompts. */
export class SimJudge {
  private readonly judgeAccuracy: number;
  private readonly validatorAccuracy: number;
  private readonly voteCorrelation: number;

  constructor(
    private readonly resolver: TruthResolver,
    private readonly options: JudgeOptions,
  ) {
    this.judgeAccuracy = options.judgeAccuracy ?? 0.9;
    this.validatorAccuracy = options.validatorAccuracy ?? this.judgeAccuracy;
    this.voteCorrelation = options.voteCorrelation ?? 0.5;
  }

  /** The draw for one request: the prompt's own draw, or (for a sampled vote) sometimes a fresh one. */
  private draw(role: string, promptKey: string, salt: string): number {
    const shared = uniform(this.options.seed, role, promptKey);
    if (salt === '') return shared;
    return uniform(this.options.seed, `${role}-mix`, promptKey, salt) < this.voteCorrelation
      ? shared
      : uniform(this.options.seed, role, promptKey, salt);
  }

  private check(truth: Truth | undefined, tools: readonly FunctionDefinition[], response: Response): boolean {
    return truth ? this.resolver.isCorrect(truth, tools, replyOf(response)) : true;
  }

  /** A judge verdict for a rendered judge prompt (system with `<tools>`, user with the conversation and two responses). */
  judge(messages: readonly { role: string; content: string }[], salt = ''): JudgeDecision<JudgeOutput> {
    const { system, user } = promptParts(messages);
    const promptKey = hashHex(`${system}\u0000${user}`);
    const tools = parsePromptTools(system) ?? [];
    const conversation: ChatMessage[] = parsePromptConversation(tagContent(user, 'conversation')) ?? [];
    const r1 = parsePromptResponse(tagContent(user, 'response_1'));
    const r2 = parsePromptResponse(tagContent(user, 'response_2'));
    const truth = conversation.length > 0 ? this.resolver.resolve(tools, conversation) : undefined;
    let trueVerdict: Verdict | undefined;
    if (!r1 || !r2) trueVerdict = !r1 && !r2 ? 'BOTH_INCORRECT' : !r1 ? 'RESPONSE1_INCORRECT' : 'RESPONSE2_INCORRECT';
    else if (truth) trueVerdict = verdictOf(this.check(truth, tools, r1), this.check(truth, tools, r2));
    // Without the truth the judge trusts the reference, as a real judge leans on it.
    const believed: Verdict =
      trueVerdict ?? (r1 && r2 && sameResponse(r1, r2) ? 'BOTH_CORRECT' : 'RESPONSE2_INCORRECT');
    const u = this.draw('judge', promptKey, salt);
    const verdict =
      u < this.judgeAccuracy
        ? believed
        : (CONFUSIONS[believed][Math.floor(((u - this.judgeAccuracy) / (1 - this.judgeAccuracy)) * 3)] ??
          CONFUSIONS[believed][0]!);
    const truthCalls = truth?.calls ?? (r1?.kind === 'calls' ? r1.calls : 'no_call');
    const describe = (response: Response | undefined, label: string): string =>
      response ? errorAnalysis(truthCalls, response, label) : `${label} is not a well-formed response.`;
    let analysis: string;
    switch (verdict) {
      case 'BOTH_CORRECT':
        analysis = 'Both responses do what the user asked with the right functions and arguments.';
        break;
      case 'RESPONSE1_INCORRECT':
        analysis = describe(r1, 'Response 1');
        break;
      case 'RESPONSE2_INCORRECT':
        analysis = describe(r2, 'Response 2');
        break;
      case 'BOTH_INCORRECT':
        analysis = `${describe(r1, 'Response 1').split('. ')[0]!.replace(/\.$/, '')}. ${describe(r2, 'Response 2').split('. ')[0]!.replace(/\.$/, '')}.`;
        break;
    }
    return {
      output: { verdict, error_analysis: analysis, correct_approach: correctApproach(truthCalls) },
      trueVerdict,
      truthKnown: truth !== undefined,
    };
  }

  /** A validation verdict for a rendered validator prompt (conversation and one response). */
  validate(messages: readonly { role: string; content: string }[], salt = ''): JudgeDecision<ValidatorOutput> {
    const { system, user } = promptParts(messages);
    const promptKey = hashHex(`${system}\u0000${user}`);
    const tools = parsePromptTools(system) ?? [];
    const conversation = parsePromptConversation(tagContent(user, 'conversation')) ?? [];
    const response = parsePromptResponse(tagContent(user, 'response'));
    const truth = conversation.length > 0 ? this.resolver.resolve(tools, conversation) : undefined;
    const right = response !== undefined && this.check(truth, tools, response);
    const u = this.draw('validator', promptKey, salt);
    const says = u < this.validatorAccuracy ? right : !right;
    const truthCalls = truth?.calls ?? (response?.kind === 'calls' ? response.calls : 'no_call');
    const analysis = says
      ? ''
      : response
        ? errorAnalysis(truthCalls, response, 'The response')
        : 'The response is not a well-formed tool call.';
    return {
      output: { verdict: says ? 'CORRECT' : 'INCORRECT', error_analysis: analysis },
      trueVerdict: truth || !response ? (right ? 'CORRECT' : 'INCORRECT') : undefined,
      truthKnown: truth !== undefined,
    };
  }
}
