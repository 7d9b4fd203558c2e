/**
 * What the sim's models know: the true next turn of a conversation, from the world (its own samples) or the BFCL
 * oracle (held-out questions), and whether a given reply matches it, judged by the project's own checker.
 */
import { compileSampleChecker, type ModelReply, type SampleChecker } from '../core/checker/index.js';
import { stringifyJson } from '../core/json.js';
import type { FunctionDefinition } from '../core/schemas/function-def.js';
import type { ChatMessage } from '../core/schemas/messages.js';
import type { Sample } from '../core/schemas/sample.js';
import type { ToolCall } from '../core/schemas/tool-call.js';
import { BfclOracle, type BfclEntry } from './bfcl-oracle.js';
import { BoundedCache, hashHex } from './random.js';
import { skillsOf, type Skill } from './skills.js';
import type { SimWorld, WorldAnalysis } from './world.js';

/** The true next turn and where the sim learned it. */
export type Truth =
  | { source: 'world'; calls: ToolCall[] | 'no_call'; analysis: WorldAnalysis }
  | { source: 'bfcl'; calls: ToolCall[] | 'no_call'; entry: BfclEntry };

/** A response as the judge, validator or checker sees it: calls, text, or output that is not a call at all. */
export type Response = { kind: 'calls'; calls: ToolCall[] } | { kind: 'text'; text: string };

/** The reply the checker reads for a response. */
export function replyOf(response: Response): ModelReply {
  if (response.kind === 'text') return response.text;
  return {
    content: null,
    tool_calls: response.calls.map((c) => ({
      type: 'function',
      function: { name: c.name, arguments: stringifyJson(c.arguments) },
    })),
  };
}

export interface TruthResolverOptions {
  world: SimWorld;
  /** Folder of BFCL data, or false for no BFCL oracle. Loaded on first need. */
  bfclDir?: string | false;
}

/** Resolves truths and checks replies, caching the compiled checker per conversation. */
export class TruthResolver {
  readonly world: SimWorld;
  private oracle: BfclOracle | undefined;
  private readonly bfclDir: string | false | undefined;
  private readonly checkers = new BoundedCache<string, SampleChecker | null>(50_000);

  constructor(options: TruthResolverOptions) {
    this.world = options.world;
    this.bfclDir = options.bfclDir;
  }

  private bfcl(): BfclOracle | undefined {
    if (this.bfclDir === false) return undefined;
    this.oracle ??= this.bfclDir === undefined ? BfclOracle.load() : BfclOracle.load(this.bfclDir);
    return this.oracle;
  }

  /** The truth for a conversation over these tools, or undefined when neither the world nor BFCL knows it. */
  resolve(tools: readonly { name: string }[], messages: readonly ChatMessage[]): Truth | undefined {
    const analysis = this.world.analyze({ tools, messages });
    if (analysis?.truth !== undefined) return { source: 'world', calls: analysis.truth, analysis };
    const entry = this.bfcl()?.lookup(tools, messages);
    return entry ? { source: 'bfcl', calls: entry.answer, entry } : undefined;
  }

  /** The skills answering this conversation takes. */
  skills(truth: Truth, tools: readonly FunctionDefinition[]): Skill[] {
    if (truth.source === 'world') {
      return skillsOf({
        tools,
        truth: truth.calls,
        priorTurns: truth.analysis.priorTurns,
        dependent: truth.analysis.dependent,
        unfamiliar: false,
      });
    }
    return skillsOf({
      tools: truth.entry.functions,
      truth: truth.calls,
      priorTurns: 0,
      dependent: false,
      unfamiliar: true,
    });
  }

  /**
   * Whether a reply is right: the world's truth with the exact checker (LoopTool's ToolMatch), a BFCL question with the
   * BFCL checker against its possible answers. `key` caches the compiled checker (the conversation's hash).
   */
  isCorrect(truth: Truth, tools: readonly FunctionDefinition[], reply: ModelReply, key?: string): boolean {
    const cacheKey = key ?? hashHex(stringifyJson({ t: tools.map((t) => t.name), c: truth.calls }));
    let checker = this.checkers.get(cacheKey);
    if (checker === undefined) {
      const sample: Sample =
        truth.source === 'world'
          ? {
              tools: [...tools],
              messages: [{ role: 'user', content: '' }],
              target: truth.calls === 'no_call' ? { kind: 'text' } : { kind: 'calls', calls: truth.calls },
            }
          : {
              tools: truth.entry.functions,
              messages: [{ role: 'user', content: '' }],
              target: truth.entry.acceptable ? { kind: 'acceptable', calls: truth.entry.acceptable } : { kind: 'text' },
            };
      const compiled = compileSampleChecker({ sample, config: { mode: truth.source === 'world' ? 'exact' : 'bfcl' } });
      checker = this.checkers.set(cacheKey, compiled.ok ? compiled.checker : null);
    }
    return checker ? checker.check(reply).valid : false;
  }
}
