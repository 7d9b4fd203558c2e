/**
 * The simulated model stack over HTTP: vLLM's OpenAI-compatible boundary (`/v1/chat/completions`, `/v1/models`, LoRA
 * load/unload, `/health`) serving a learning student, a judge, a validator and a generator, plus the simulated
 * trainer's job API (`/trainer/v1/jobs`) and test controls (`/sim/faults`, `/sim/stats`). Production code talks to it
 * exactly as it talks to vLLM and a trainer.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isJsonObject, parseJson, stringifyJson, type JsonValue } from '../core/json.js';
import type { FunctionDefinition } from '../core/schemas/function-def.js';
import type { ChatMessage } from '../core/schemas/messages.js';
import { MultiTurnOracle } from './bfcl-oracle.js';
import { exposureOf, readCheckpoint } from './checkpoint.js';
import { FaultInjector, FaultRequest, type FaultKind, type FaultRule, type ModelRole } from './faults.js';
import { GENERATOR_FLAWS, SimGenerator, type GeneratorFlaw } from './generator.js';
import { SimJudge } from './judge.js';
import { ANSWER_ERROR_KINDS, type AnswerErrorKind } from './mutations.js';
import { readPolicyPrompt } from './prompt-parse.js';
import { BoundedCache, hashHex } from './random.js';
import type { LearningParams } from './skills.js';
import { BASE_CHECKPOINT, SimStudent, type StudentAnswer, type StudentCheckpoint } from './student.js';
import { pseudoTokens, tokenLogprobsJson } from './tokens.js';
import { SimTrainer, TrainerJobRequest, type JobStatus } from './trainer.js';
import { TruthResolver } from './truth.js';
import { getWorld } from './world.js';

export interface SimServerOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** Everything the sim decides follows from it. @default 7 */
  seed?: number;
  /** The policy's base model name. @default 'sim-student' */
  policyModel?: string;
  /** @default 'sim-judge' */
  judgeModel?: string;
  /** @default 'sim-generator' */
  generatorModel?: string;
  /** Chance one judge vote is right. @default 0.9 */
  judgeAccuracy?: number;
  /** Chance one validation verdict is right. @default judgeAccuracy */
  validatorAccuracy?: number;
  /** How much sampled judge votes on one prompt agree beyond chance (0: independent). @default 0.5 */
  voteCorrelation?: number;
  /** Share of generator outputs with a flaw. @default 0.1 */
  generatorFlawRate?: number;
  /** Overrides of the student's learning model (see skills.ts). */
  learning?: Partial<LearningParams>;
  /** Share of samples whose draw changes per checkpoint. @default 0.2 */
  checkpointNoise?: number;
  trainer?: { jobSeconds?: number; batchSize?: number; concurrency?: number; defaultEpochs?: number };
  /** Faults active from the start. */
  faults?: FaultRule[];
  /** BFCL data folder for the oracle, or false for none. @default the project's data/bfcl */
  bfclDir?: string | false;
  /**
   * The served models' context in tokens (vLLM `--max-model-len`): a chat request whose prompt and `max_tokens` do not
   * fit gets vLLM's 400, and `/tokenize` reports it as `max_model_len`. @default 32768
   */
  maxModelLen?: number;
  /** Adapters to load at start: name → checkpoint directory. */
  adapters?: Readonly<Record<string, string>>;
  /**
   * As vLLM's `--api-key`: every `/v1/*` request (chat, models, the LoRA routes) must carry `Authorization: Bearer
   * <key>` or gets vLLM's 401 `{"error": "Unauthorized"}`. `/health` stays open, as in vLLM; so do the sim's own
   * `/sim/*` controls and the trainer API, which vLLM does not have.
   */
  apiKey?: string;
  /**
   * The LoRA load/unload routes exist, as in vLLM with VLLM_ALLOW_RUNTIME_LORA_UPDATING=True. False: they answer 404
   * `{"detail": "Not Found"}`, as vLLM does without it. @default true
   */
  runtimeLoraUpdating?: boolean;
  /**
   * vLLM's batch route `POST /v1/chat/completions/batch` exists (recent vLLM). False: it answers 404
   * `{"detail": "Not Found"}`, as a vLLM without it does. @default true
   */
  batchRoute?: boolean;
}

/** The model-server routes whose requests `SimStats.routes` counts; any other `/v1/*` path counts as `other`. */
const MODEL_ROUTES = new Set([
  'GET /health',
  'GET /v1/models',
  'POST /v1/chat/completions',
  'POST /v1/chat/completions/batch',
  'POST /v1/load_lora_adapter',
  'POST /v1/unload_lora_adapter',
]);

/** Requests to one model-server route. */
export interface RouteStats {
  requests: number;
  /** Requests that carried the server's API key as their bearer token (none count when it has no key). */
  withKey: number;
  /** Requests answered 401 for a missing or wrong key. */
  rejected: number;
}

/** What `GET /sim/stats` returns. */
/**
 * The sim's count of a chat's prompt tokens, the same for `/tokenize` and the context check: about four characters a
 * token over the messages as JSON (what BPE vocabularies average on English and code).
 */
export function simPromptTokens(messages: unknown): number {
  return promptTokensOfJson(JSON.stringify(messages ?? []));
}

/** {@link simPromptTokens} of messages already written as JSON. */
function promptTokensOfJson(messagesJson: string): number {
  return Math.max(1, Math.ceil(messagesJson.length / 4));
}

export interface SimStats {
  requests: {
    total: number;
    /** Model requests the client closed before an answer was sent (a cancelled activity, a client timeout). */
    aborted: number;
    byRole: Record<ModelRole, number>;
    byModel: Record<string, number>;
    byTask: Record<'student' | 'judge' | 'validator' | 'generator', number>;
    /** `POST /tokenize` requests (prompt lengths counted). */
    tokenize: number;
  };
  faults: Record<FaultKind, number>;
  student: {
    answered: number;
    correct: number;
    wrong: number;
    unknownTruth: number;
    byErrorKind: Record<AnswerErrorKind, number>;
  };
  judge: { votes: number; truthKnown: number; agreedWithTruth: number; validations: number; validationsAgreed: number };
  generator: { outputs: number; flawed: Record<GeneratorFlaw, number> };
  trainer: Record<JobStatus, number>;
  adapters: string[];
  /** Model-server requests by route (`GET /v1/models`, `GET /health`, …, `other`): how many carried the API key. */
  routes: Record<string, RouteStats>;
}

export interface SimServer {
  /** `http://host:port`. */
  url: string;
  /** The OpenAI base URL (`url` + `/v1`). */
  baseURL: string;
  /** The trainer API base (`url` + `/trainer/v1`). */
  trainerURL: string;
  port: number;
  policyModel: string;
  judgeModel: string;
  generatorModel: string;
  faults: FaultInjector;
  stats(): SimStats;
  /**
   * While held, trainer jobs do not finish: a running job stays `running` after its last step until released, so a
   * test can act while training is certainly under way.
   */
  holdTraining(held: boolean): void;
  /** The next `count` trainer jobs fail as soon as they start. */
  failTraining(count: number): void;
  /** Stops listening, drops held connections and stops trainer timers. */
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'BadRequestError',
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

const MAX_BODY_BYTES = 64 * 1024 * 1024;

/** The token of an `Authorization: Bearer <token>` header (the scheme in any case: what follows the first space). */
function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const space = header.indexOf(' ');
  return space >= 0 && header.slice(0, space).toLowerCase() === 'bearer' ? header.slice(space + 1) : undefined;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    // A request body mostly comes in one chunk: decoded as it is, without a copy.
    req.on('end', () =>
      resolve((chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString('utf8')),
    );
    req.on('error', reject);
  });
}

/**
 * One conversation's answer, in parts: the completion's head (id, object, created, model: a JSON object's text), its
 * choice's fields after `index` as JSON text, and its token counts. Parts, so that a batch joins its conversations'
 * answers into one completion without parsing them.
 */
interface Completion {
  head: string;
  choice: string;
  promptTokens: number;
  completionTokens: number;
}

/** Answers as one chat completion: the first one's head, a choice per answer indexed in order, the usage summed. */
function completionText(answers: readonly Completion[]): string {
  let promptTokens = 0;
  let completionTokens = 0;
  let choices = '';
  answers.forEach((answer, index) => {
    promptTokens += answer.promptTokens;
    completionTokens += answer.completionTokens;
    choices += `${index > 0 ? ',' : ''}{"index":${index},${answer.choice}}`;
  });
  const usage = JSON.stringify({
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  });
  return `${answers[0]!.head.slice(0, -1)},"choices":[${choices}],"usage":${usage},"prompt_logprobs":null}`;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  // Written as a string: Node encodes one of up to 16 KiB straight into the socket write, where a Buffer of a reply
  // (over 4 KiB, past Node's pool) is an allocation of its own; measured, about 8 µs less CPU a reply. Counting the
  // bytes first is cheap now that replies are flat strings (tokens.ts joins the logprobs once).
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  type: string,
  param: string | null = null,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, { error: { message, type, param, code: status } }, headers);
}

function sendText(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function textContent(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Array.isArray(value))
    return value
      .map((part: unknown) =>
        typeof (part as { text?: unknown } | null)?.text === 'string' ? (part as { text: string }).text : '',
      )
      .join('');
  return '';
}

/** Wire messages to chat messages, without schema validation (the hot path), parsing call arguments losslessly. */
function toChatMessages(raw: unknown): ChatMessage[] {
  if (!Array.isArray(raw) || raw.length === 0)
    throw new HttpError(400, "'messages' must be a non-empty array", 'BadRequestError', 'messages');
  return raw.map((item: unknown, index): ChatMessage => {
    if (typeof item !== 'object' || item === null)
      throw new HttpError(400, `messages[${index}] must be an object`, 'BadRequestError', 'messages');
    const m = item as {
      role?: unknown;
      content?: unknown;
      tool_calls?: unknown;
      tool_call_id?: unknown;
      name?: unknown;
    };
    switch (m.role) {
      case 'system':
      case 'developer':
        return { role: 'system', content: textContent(m.content) };
      case 'user':
        return { role: 'user', content: textContent(m.content) };
      case 'tool':
        return {
          role: 'tool',
          content: textContent(m.content),
          ...(typeof m.tool_call_id === 'string' ? { tool_call_id: m.tool_call_id } : {}),
        };
      case 'assistant': {
        const calls = Array.isArray(m.tool_calls) ? m.tool_calls : [];
        const toolCalls = calls.map((call: unknown) => {
          const fn = (call as { function?: { name?: unknown; arguments?: unknown } }).function ?? {};
          const args =
            typeof fn.arguments === 'string'
              ? parseJson(fn.arguments || '{}')
              : { ok: true as const, value: (fn.arguments ?? {}) as JsonValue };
          return {
            type: 'function' as const,
            function: { name: String(fn.name ?? ''), arguments: args.ok && isJsonObject(args.value) ? args.value : {} },
          };
        });
        return {
          role: 'assistant',
          content: m.content === null || m.content === undefined ? null : textContent(m.content),
          ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
        };
      }
      default:
        throw new HttpError(
          400,
          `messages[${index}].role ${JSON.stringify(m.role)} is not supported`,
          'BadRequestError',
          'messages',
        );
    }
  });
}

function toolsOf(raw: unknown): FunctionDefinition[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new HttpError(400, "'tools' must be an array", 'BadRequestError', 'tools');
  return raw.map((tool: unknown, index) => {
    const fn = (tool as { function?: unknown })?.function as FunctionDefinition | undefined;
    if (!fn || typeof fn.name !== 'string')
      throw new HttpError(
        400,
        `tools[${index}] must be {type: "function", function: {name, ...}}`,
        'BadRequestError',
        'tools',
      );
    return fn;
  });
}

interface Adapter {
  name: string;
  path: string;
  checkpoint: StudentCheckpoint;
}

type Task = 'student' | 'judge' | 'validator' | 'generator';

/** The student's key part for a request without `tools` (the hash of `[]`). */
const NO_TOOLS_KEY = hashHex('[]');

const SCHEMA_TASKS: Readonly<Record<string, Task>> = {
  judge_verdict: 'judge',
  sample_validation: 'validator',
  generated_sample: 'generator',
};

/**
 * Starts the sim server and resolves once it listens. See the module comment for the endpoints; sim/README.md has the
 * full HTTP contract.
 */
export async function startSimServer(options: SimServerOptions = {}): Promise<SimServer> {
  const seed = options.seed ?? 7;
  const policyModel = options.policyModel ?? 'sim-student';
  const judgeModel = options.judgeModel ?? 'sim-judge';
  const generatorModel = options.generatorModel ?? 'sim-generator';
  const world = getWorld();
  const resolver = new TruthResolver({ world, ...(options.bfclDir !== undefined ? { bfclDir: options.bfclDir } : {}) });
  const student = new SimStudent(resolver, {
    seed,
    // BFCL's multi-turn questions live only in bfcl-eval's data folder (the harness backend's); a folder without
    // them (data/bfcl) gives an empty oracle.
    multiTurn: () => (options.bfclDir ? MultiTurnOracle.load(options.bfclDir) : undefined),
    ...(options.learning ? { learning: options.learning } : {}),
    ...(options.checkpointNoise !== undefined ? { checkpointNoise: options.checkpointNoise } : {}),
  });
  const judge = new SimJudge(resolver, {
    seed,
    ...(options.judgeAccuracy !== undefined ? { judgeAccuracy: options.judgeAccuracy } : {}),
    ...(options.validatorAccuracy !== undefined ? { validatorAccuracy: options.validatorAccuracy } : {}),
    ...(options.voteCorrelation !== undefined ? { voteCorrelation: options.voteCorrelation } : {}),
  });
  const generator = new SimGenerator(world, {
    seed,
    ...(options.generatorFlawRate !== undefined ? { flawRate: options.generatorFlawRate } : {}),
  });
  const trainer = new SimTrainer({ resolver, ...options.trainer });
  const faults = new FaultInjector(options.faults ?? []);
  const adapters = new Map<string, Adapter>();
  const toolsCache = new BoundedCache<string, FunctionDefinition[]>(20_000);
  const occurrences = new BoundedCache<string, number>(200_000);
  const held = new Set<ServerResponse>();
  const timers = new Set<NodeJS.Timeout>();
  let completionSeq = 0;
  const created = Math.floor(Date.now() / 1000);

  const stats: SimStats = {
    requests: {
      total: 0,
      aborted: 0,
      byRole: { policy: 0, judge: 0, generator: 0 },
      byModel: {},
      byTask: { student: 0, judge: 0, validator: 0, generator: 0 },
      tokenize: 0,
    },
    faults: faults.counts(),
    student: {
      answered: 0,
      correct: 0,
      wrong: 0,
      unknownTruth: 0,
      byErrorKind: Object.fromEntries(ANSWER_ERROR_KINDS.map((k) => [k, 0])) as Record<AnswerErrorKind, number>,
    },
    judge: { votes: 0, truthKnown: 0, agreedWithTruth: 0, validations: 0, validationsAgreed: 0 },
    generator: {
      outputs: 0,
      flawed: Object.fromEntries(GENERATOR_FLAWS.map((k) => [k, 0])) as Record<GeneratorFlaw, number>,
    },
    trainer: trainer.statusCounts(),
    adapters: [],
    routes: {},
  };

  const loadAdapter = async (name: string, location: string): Promise<void> => {
    if (adapters.has(name))
      throw new HttpError(400, `The lora adapter '${name}' has already been loaded.`, 'InvalidUserInput');
    if (name === policyModel || name === judgeModel || name === generatorModel)
      throw new HttpError(400, `'${name}' is the name of a served model.`, 'InvalidUserInput');
    let checkpoint;
    try {
      checkpoint = await readCheckpoint(location);
    } catch (err) {
      throw new HttpError(400, `Loading lora ${name} failed: ${(err as Error).message}`, 'BadRequestError');
    }
    adapters.set(name, { name, path: location, checkpoint: { id: checkpoint.id, exposure: exposureOf(checkpoint) } });
  };
  for (const [name, location] of Object.entries(options.adapters ?? {})) await loadAdapter(name, location);

  const roleOf = (model: string): ModelRole | undefined => {
    if (model === policyModel || adapters.has(model)) return 'policy';
    if (model === judgeModel) return 'judge';
    if (model === generatorModel) return 'generator';
    return undefined;
  };

  /** Resolves after `ms`, or as soon as the client closes `res` (its timer cleared: nothing answers a closed socket). */
  const wait = (ms: number, res: ServerResponse): Promise<void> =>
    new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        timers.delete(timer);
        res.off('close', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timers.add(timer);
      res.once('close', done);
    });

  /** The salt of a request: empty for greedy decoding, the request's seed or its repeat count when sampling. */
  const saltOf = (body: Record<string, unknown>, key: string): string => {
    const temperature = typeof body.temperature === 'number' ? body.temperature : 1;
    if (temperature <= 0) return '';
    if (typeof body.seed === 'number') return `seed:${body.seed}`;
    const n = occurrences.get(key) ?? 0;
    occurrences.set(key, n + 1);
    return `n:${n}`;
  };

  const completion = (
    model: string,
    body: Record<string, unknown>,
    text: string,
    meanLogprob: number,
    key: string,
    promptTokens: number,
    extra: { toolCalls?: unknown[] } = {},
  ): Completion => {
    let tokens = pseudoTokens(text);
    let finish = extra.toolCalls ? 'tool_calls' : 'stop';
    let toolCalls = extra.toolCalls;
    let content: string | null = toolCalls ? null : text;
    const maxTokens =
      typeof body.max_tokens === 'number'
        ? body.max_tokens
        : typeof body.max_completion_tokens === 'number'
          ? body.max_completion_tokens
          : undefined;
    if (maxTokens !== undefined && tokens.length > maxTokens) {
      // Cut off mid-output, as vLLM does at max_tokens: the partial text comes back and no call is parsed from it.
      tokens = tokens.slice(0, maxTokens);
      content = tokens.join('');
      toolCalls = undefined;
      finish = 'length';
    }
    const wantLogprobs = body.logprobs === true;
    const top = typeof body.top_logprobs === 'number' ? body.top_logprobs : 0;
    completionSeq++;
    // Written as text around the logprobs JSON, which tokens.ts writes directly (the hot path of every probe).
    const head = JSON.stringify({
      id: `chatcmpl-${hashHex(`${seed}|${completionSeq}|${key}`)}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
    });
    const message = JSON.stringify({
      role: 'assistant',
      content,
      tool_calls: toolCalls ?? [],
      reasoning_content: null,
    });
    const logprobs = wantLogprobs ? `{"content":${tokenLogprobsJson(tokens, meanLogprob, key, top)}}` : 'null';
    return {
      head,
      choice: `"message":${message},"logprobs":${logprobs},"finish_reason":"${finish}","stop_reason":null`,
      promptTokens,
      completionTokens: tokens.length,
    };
  };

  const studentCompletion = (
    model: string,
    body: Record<string, unknown>,
    promptTokens: number,
    messagesJson: string,
  ): Completion => {
    const sent = toChatMessages(body.messages);
    // Without `tools` the request is the policy's plain-text chat (core/formats/policy-prompt.ts): the tools are in
    // its system prompt and the reply's calls go into the text, as vLLM answers when no tool parser runs.
    const withTools = Array.isArray(body.tools) && body.tools.length > 0;
    const toolsKey = withTools ? hashHex(JSON.stringify(body.tools)) : NO_TOOLS_KEY;
    let tools: FunctionDefinition[];
    let messages: ChatMessage[];
    if (withTools) {
      tools = toolsCache.get(toolsKey) ?? toolsCache.set(toolsKey, toolsOf(body.tools));
      messages = sent;
    } else ({ tools, messages } = readPolicyPrompt(sent));
    const key = `s:${toolsKey}${hashHex(messagesJson)}`;
    const checkpoint = adapters.get(model)?.checkpoint ?? BASE_CHECKPOINT;
    const salt = saltOf(body, `${model}|${key}`);
    const answer: StudentAnswer = student.answer({ key, tools, messages }, checkpoint, salt);
    stats.student.answered++;
    if (answer.correct === undefined) stats.student.unknownTruth++;
    else if (answer.correct) stats.student.correct++;
    else stats.student.wrong++;
    if (answer.errorKind) stats.student.byErrorKind[answer.errorKind]++;
    const output = answer.output;
    const responseKey = `${key}|${checkpoint.id}|${salt}`;
    if (output.kind === 'calls') {
      // Arguments are written once (floats kept as floats) and serve both the hermes text and the parsed tool_calls.
      const args = output.calls.map((call) => stringifyJson(call.arguments, { separators: 'python' }));
      const toolCalls = output.calls.map((call, index) => ({
        id: `chatcmpl-tool-${hashHex(`${responseKey}|${index}`)}`,
        type: 'function',
        function: { name: call.name, arguments: args[index] as string },
      }));
      const text = output.calls
        .map(
          (call, index) =>
            `<tool_call>\n{"name": ${JSON.stringify(call.name)}, "arguments": ${args[index] as string}}\n</tool_call>`,
        )
        .join('\n');
      return completion(
        model,
        body,
        text,
        answer.meanLogprob,
        responseKey,
        promptTokens,
        withTools ? { toolCalls } : {},
      );
    }
    return completion(model, body, output.text, answer.meanLogprob, responseKey, promptTokens);
  };

  const structuredCompletion = (
    task: Exclude<Task, 'student'>,
    model: string,
    body: Record<string, unknown>,
    promptTokens: number,
  ): Completion => {
    const messages = (Array.isArray(body.messages) ? body.messages : []).map((m: unknown) => ({
      role: String((m as { role?: unknown }).role ?? ''),
      content: textContent((m as { content?: unknown }).content),
    }));
    const key = `p:${hashHex(JSON.stringify(messages))}`;
    const salt = saltOf(body, `${model}|${key}`);
    let content: string;
    if (task === 'judge') {
      const decision = judge.judge(messages, salt);
      stats.judge.votes++;
      if (decision.truthKnown) stats.judge.truthKnown++;
      if (decision.trueVerdict === decision.output.verdict) stats.judge.agreedWithTruth++;
      content = stringifyJson(decision.output, { separators: 'python' });
    } else if (task === 'validator') {
      const decision = judge.validate(messages, salt);
      stats.judge.validations++;
      if (decision.trueVerdict === decision.output.verdict) stats.judge.validationsAgreed++;
      content = stringifyJson(decision.output, { separators: 'python' });
    } else {
      const generation = generator.generate(messages, salt);
      stats.generator.outputs++;
      if (generation.flaw) stats.generator.flawed[generation.flaw]++;
      content = generation.content;
    }
    return completion(model, body, content, -0.35, `${key}|${salt}`, promptTokens);
  };

  const taskOf = (role: ModelRole, body: Record<string, unknown>): Task => {
    const format = body.response_format as { type?: unknown; json_schema?: { name?: unknown } } | undefined;
    const schemaName = typeof format?.json_schema?.name === 'string' ? format.json_schema.name : undefined;
    if (schemaName && SCHEMA_TASKS[schemaName]) return SCHEMA_TASKS[schemaName];
    if (role === 'policy') return 'student';
    const user = Array.isArray(body.messages)
      ? body.messages.map((m: unknown) => textContent((m as { content?: unknown }).content)).join('\n')
      : '';
    if (user.includes('<response_1>')) return 'judge';
    if (user.includes('<seed_conversation>')) return 'generator';
    if (user.includes('<response>')) return 'validator';
    throw new HttpError(
      400,
      `sim: cannot tell what this request asks of ${role} model (no known json_schema name and no known prompt tags)`,
    );
  };

  /** A request's body as a JSON object, its model and the model's role (vLLM's 400 and 404 otherwise). */
  const chatRequest = (raw: string): { body: Record<string, unknown>; model: string; role: ModelRole } => {
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      body = parsed as Record<string, unknown>;
    } catch {
      throw new HttpError(400, 'request body is not a JSON object');
    }
    const model = body.model;
    if (typeof model !== 'string') throw new HttpError(400, "'model' is required", 'BadRequestError', 'model');
    const role = roleOf(model);
    if (!role) throw new HttpError(404, `The model \`${model}\` does not exist.`, 'NotFoundError', 'model');
    return { body, model, role };
  };

  /**
   * The fault rule this request draws, if any. Faults that replace the answer (429, 500, an HTML page, no answer) are
   * sent here, and `answered` is true; a latency fault is waited out, and `answered` is then true when the client has
   * gone meanwhile (nothing is left to answer).
   */
  const drawFault = async (
    res: ServerResponse,
    role: ModelRole,
    model: string,
    conversations: number,
  ): Promise<{ fault: FaultRule | undefined; answered: boolean }> => {
    stats.requests.total += conversations;
    stats.requests.byRole[role] += conversations;
    stats.requests.byModel[model] = (stats.requests.byModel[model] ?? 0) + conversations;
    let closed = false;
    res.once('close', () => {
      closed = true;
      if (!res.writableFinished) stats.requests.aborted++;
    });
    const fault = faults.take(role, model);
    const answered = (): { fault: FaultRule | undefined; answered: boolean } => ({ fault, answered: true });
    if (fault?.kind === 'rate_limit') {
      const seconds = fault.retryAfterSeconds ?? 1;
      sendError(res, 429, 'Rate limit exceeded (sim fault)', 'RateLimitError', null, {
        'retry-after': String(seconds),
      });
      return answered();
    }
    if (fault?.kind === 'server_error') {
      sendError(res, 500, 'Internal server error (sim fault)', 'InternalServerError');
      return answered();
    }
    if (fault?.kind === 'garbage') {
      // What a proxy in front of the server sends when the upstream died: status 200, an HTML page. The request never
      // reached the model, so no answer is drawn and the retry gets the one an unfaulted request would.
      const page = '<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>';
      res.writeHead(200, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(page) });
      res.end(page);
      return answered();
    }
    if (fault?.kind === 'timeout') {
      // Never answered: the client gives up on its own timeout; close() drops the connection.
      held.add(res);
      res.once('close', () => held.delete(res));
      return answered();
    }
    if (fault?.kind === 'latency') await wait(fault.latencyMs ?? 1000, res);
    return { fault, answered: closed };
  };

  /** One conversation's answer, after vLLM's checks of it (streaming refused, prompt and reply within the context). */
  const answerOf = (role: ModelRole, model: string, body: Record<string, unknown>): Completion => {
    if (body.stream === true) throw new HttpError(400, 'streaming is not supported by the sim server');
    // Written once: the prompt's length and the student's key both read it.
    const messagesJson = JSON.stringify(body.messages ?? []);
    const promptLength = promptTokensOfJson(messagesJson);
    const replyBudget = typeof body.max_tokens === 'number' ? body.max_tokens : 0;
    if (promptLength + replyBudget > maxModelLen)
      throw new HttpError(
        400,
        `This model's maximum context length is ${maxModelLen} tokens. However, you requested ` +
          `${promptLength + replyBudget} tokens (${promptLength} in the messages, ${replyBudget} in the completion). ` +
          'Please reduce the length of the messages or completion.',
        'BadRequestError',
      );
    const task = taskOf(role, body);
    stats.requests.byTask[task]++;
    return task === 'student'
      ? studentCompletion(model, body, promptLength, messagesJson)
      : structuredCompletion(task, model, body, promptLength);
  };

  /** A completion's text, or the faulted text a `truncated` or `bad_usage` rule asks for. */
  const sendCompletion = (res: ServerResponse, text: string, fault: FaultRule | undefined): void => {
    if (fault?.kind === 'truncated') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(text.slice(0, Math.floor(text.length / 2)));
      return;
    }
    if (fault?.kind === 'bad_usage') {
      // Valid JSON of the wrong shape: the completion as drawn, with a count that is no number.
      const completion = JSON.parse(text) as { usage: Record<string, unknown> };
      completion.usage.prompt_tokens = 'lots';
      sendJson(res, 200, JSON.stringify(completion));
      return;
    }
    sendJson(res, 200, text);
  };

  const chatCompletions = async (res: ServerResponse, raw: string): Promise<void> => {
    const { body, model, role } = chatRequest(raw);
    const { fault, answered } = await drawFault(res, role, model, 1);
    if (answered) return;
    const text = completionText([answerOf(role, model, body)]);
    if (res.destroyed) return;
    sendCompletion(res, text, fault);
  };

  /**
   * vLLM's batch route (`OpenAIServingChatBatch`): `messages` is a list of conversations, each answered as the single
   * route answers it; one completion comes back with a choice per conversation (indexed 0…N-1, in request order) and
   * the usage summed. A conversation the server cannot serve (too long, …) fails the whole request with its error;
   * streaming, `tools` and `n` other than 1 are refused, as vLLM refuses them. A fault rule applies to the request.
   */
  const chatCompletionsBatch = async (res: ServerResponse, raw: string): Promise<void> => {
    const { body, model, role } = chatRequest(raw);
    const conversations = body.messages;
    if (!Array.isArray(conversations) || conversations.length === 0 || !conversations.every(Array.isArray))
      throw new HttpError(400, "'messages' must be a non-empty list of conversations", 'BadRequestError', 'messages');
    if (body.stream === true) throw new HttpError(400, 'Streaming is not supported for batch chat completions');
    if (body.tools !== undefined && body.tools !== null)
      throw new HttpError(400, 'Tool use is not supported for batch chat completions', 'BadRequestError', 'tools');
    if (body.n !== undefined && body.n !== null && body.n !== 1)
      throw new HttpError(400, 'n must be 1 for batch chat completions', 'BadRequestError', 'n');
    const { fault, answered } = await drawFault(res, role, model, conversations.length);
    if (answered) return;
    const text = completionText(conversations.map((messages: unknown) => answerOf(role, model, { ...body, messages })));
    if (res.destroyed) return;
    sendCompletion(res, text, fault);
  };

  const models = () => {
    const entry = (id: string, root: string, parent: string | null) => ({
      id,
      object: 'model',
      created,
      owned_by: 'vllm',
      root,
      parent,
      max_model_len: 32768,
      permission: [],
    });
    return {
      object: 'list',
      data: [
        entry(policyModel, policyModel, null),
        ...[...adapters.values()].map((a) => entry(a.name, a.path, policyModel)),
        entry(judgeModel, judgeModel, null),
        entry(generatorModel, generatorModel, null),
      ],
    };
  };

  const parseObject = (raw: string): Record<string, unknown> => {
    const parsed = parseJson(raw === '' ? '{}' : raw);
    if (!parsed.ok || !isJsonObject(parsed.value)) throw new HttpError(400, 'request body is not a JSON object');
    return parsed.value as Record<string, unknown>;
  };

  const trainerRoutes = async (req: IncomingMessage, res: ServerResponse, url: URL, raw: string): Promise<boolean> => {
    const method = req.method ?? 'GET';
    const parts = url.pathname.split('/').filter(Boolean).slice(2);
    if (parts[0] !== 'jobs') return false;
    if (parts.length === 1 && method === 'POST') {
      const parsed = TrainerJobRequest.safeParse(parseObject(raw));
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new HttpError(
          422,
          `invalid job: ${issue ? `${issue.path.join('.') || '(body)'}: ${issue.message}` : 'invalid'}`,
          'ValidationError',
        );
      }
      const result = trainer.submit(parsed.data);
      if (result.kind === 'conflict')
        sendJson(res, 409, {
          error: { message: result.reason, type: 'ConflictError', param: 'job_key', code: 409 },
          job: result.job,
        });
      else sendJson(res, result.kind === 'created' ? 201 : 200, result.job);
      return true;
    }
    if (parts.length === 1 && method === 'GET') {
      const key = url.searchParams.get('job_key');
      sendJson(res, 200, { data: trainer.list(key ?? undefined) });
      return true;
    }
    const id = parts[1] as string;
    if (parts.length === 2 && method === 'GET') {
      const job = trainer.get(id);
      if (!job) throw new HttpError(404, `no job ${id}`, 'NotFoundError');
      sendJson(res, 200, job);
      return true;
    }
    if (parts.length === 3 && parts[2] === 'cancel' && method === 'POST') {
      const job = trainer.cancel(id);
      if (!job) throw new HttpError(404, `no job ${id}`, 'NotFoundError');
      sendJson(res, 200, job);
      return true;
    }
    if (parts.length === 3 && parts[2] === 'logs' && method === 'GET') {
      const lines = trainer.logs(id);
      if (!lines) throw new HttpError(404, `no job ${id}`, 'NotFoundError');
      sendJson(res, 200, { id, lines });
      return true;
    }
    return false;
  };

  const runtimeLoraUpdating = options.runtimeLoraUpdating ?? true;
  const batchRoute = options.batchRoute ?? true;
  const maxModelLen = options.maxModelLen ?? 32_768;
  /**
   * vLLM's AuthenticationMiddleware: with a key, a path starting with `/v1` needs `Bearer <key>` (scheme in any case);
   * OPTIONS and every other path pass. Counts each model-server request by route, with or without the key.
   */
  const authorized = (req: IncomingMessage, route: string, pathname: string): boolean => {
    const isModelRoute = pathname === '/health' || pathname.startsWith('/v1');
    if (!isModelRoute) return true;
    const withKey = options.apiKey !== undefined && bearerToken(req.headers.authorization) === options.apiKey;
    const rejected = options.apiKey !== undefined && !withKey && pathname.startsWith('/v1') && req.method !== 'OPTIONS';
    const counts = (stats.routes[MODEL_ROUTES.has(route) ? route : 'other'] ??= {
      requests: 0,
      withKey: 0,
      rejected: 0,
    });
    counts.requests++;
    if (withKey) counts.withKey++;
    if (rejected) counts.rejected++;
    return !rejected;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const target = req.url ?? '/';
    const query = target.indexOf('?');
    const pathname = query < 0 ? target : target.slice(0, query);
    const method = req.method ?? 'GET';
    const raw = method === 'GET' || method === 'HEAD' ? '' : await readBody(req);
    const route = `${method} ${pathname}`;
    if (!authorized(req, route, pathname)) {
      sendJson(res, 401, { error: 'Unauthorized' });
      return;
    }
    switch (route) {
      case 'GET /health':
        res.writeHead(200, { 'content-length': 0 });
        res.end();
        return;
      case 'GET /v1/models':
        sendJson(res, 200, models());
        return;
      case 'POST /v1/chat/completions':
        await chatCompletions(res, raw);
        return;
      case 'POST /v1/chat/completions/batch':
        if (!batchRoute) break;
        await chatCompletionsBatch(res, raw);
        return;
      case 'POST /tokenize': {
        // vLLM's tokenizer route (at the server root): the chat's prompt length as the server counts it.
        const body = parseObject(raw);
        if (typeof body.model !== 'string' || !roleOf(body.model))
          throw new HttpError(404, `The model \`${String(body.model)}\` does not exist.`, 'NotFoundError', 'model');
        if (!Array.isArray(body.messages)) throw new HttpError(400, "'messages' is required", 'BadRequestError');
        stats.requests.tokenize++;
        sendJson(res, 200, { count: simPromptTokens(body.messages), max_model_len: maxModelLen, tokens: [] });
        return;
      }
      case 'POST /v1/load_lora_adapter': {
        if (!runtimeLoraUpdating) break;
        const body = parseObject(raw);
        if (typeof body.lora_name !== 'string' || typeof body.lora_path !== 'string')
          throw new HttpError(400, "'lora_name' and 'lora_path' are required", 'BadRequestError');
        await loadAdapter(body.lora_name, body.lora_path);
        sendText(res, 200, `Success: LoRA adapter '${body.lora_name}' added successfully.`);
        return;
      }
      case 'POST /v1/unload_lora_adapter': {
        if (!runtimeLoraUpdating) break;
        const body = parseObject(raw);
        if (typeof body.lora_name !== 'string') throw new HttpError(400, "'lora_name' is required", 'BadRequestError');
        if (!adapters.delete(body.lora_name))
          throw new HttpError(404, `The lora adapter '${body.lora_name}' cannot be found.`, 'NotFoundError');
        sendText(res, 200, `Success: LoRA adapter '${body.lora_name}' removed successfully.`);
        return;
      }
      case 'GET /sim/stats':
        sendJson(res, 200, snapshot());
        return;
      case 'GET /sim/faults':
        sendJson(res, 200, { rules: faults.list() });
        return;
      case 'POST /sim/faults': {
        const parsed = FaultRequest.safeParse(parseObject(raw.trim().startsWith('[') ? `{"rules": ${raw}}` : raw));
        if (!parsed.success)
          throw new HttpError(
            422,
            `invalid fault rule: ${parsed.error.issues[0]?.message ?? 'invalid'}`,
            'ValidationError',
          );
        const value = parsed.data;
        faults.add(Array.isArray(value) ? value : 'rules' in value ? value.rules : [value]);
        sendJson(res, 200, { rules: faults.list() });
        return;
      }
      case 'DELETE /sim/faults':
        faults.clear();
        sendJson(res, 200, { rules: [] });
        return;
    }
    if (pathname.startsWith('/trainer/v1/') && (await trainerRoutes(req, res, new URL(target, 'http://sim'), raw)))
      return;
    sendJson(res, 404, { detail: 'Not Found' });
  };

  const snapshot = (): SimStats => ({
    ...structuredClone(stats),
    faults: faults.counts(),
    trainer: trainer.statusCounts(),
    adapters: [...adapters.keys()],
  });

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent || res.destroyed) return;
      if (err instanceof HttpError) sendError(res, err.status, err.message, err.type, err.param);
      else sendError(res, 500, err instanceof Error ? err.message : String(err), 'InternalServerError');
    });
  });
  // Clients keep connections open between requests (the probe sends thousands); don't drop them between bursts.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  return {
    url,
    baseURL: `${url}/v1`,
    trainerURL: `${url}/trainer/v1`,
    port: address.port,
    policyModel,
    judgeModel,
    generatorModel,
    faults,
    stats: snapshot,
    holdTraining: (held) => trainer.hold(held),
    failTraining: (count) => trainer.failNext(count),
    close: async () => {
      trainer.close();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const res of held) res.destroy();
      held.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
