/**
 * The training reward as a service (`looptool reward serve`): `POST /v1/score` scores a batch of GRPO completions
 * against their labels with core/checker, the checker the probe and evaluation use, so the reward a trainer optimises
 * and the accuracy the loop measures can never disagree. Trainers reach it through the thin Python functions in
 * `recipes/reward/` (verl, TRL); `GET /health` answers once it listens. Plain node:http: one route, no framework.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compileSampleChecker, type ModelReply, type SampleChecker } from '../core/checker/index.js';
import { targetFromOutput } from '../core/formats/looptool.js';
import { toolsFromJson } from '../core/formats/openai-chat.js';
import { joinPath } from '../core/formats/rejection.js';
import { parseJson, stringifyJson } from '../core/json.js';
import {
  REWARD_HEALTH_PATH,
  REWARD_SCORE_PATH,
  RewardRequest,
  type RewardErrorResponse,
  type RewardItem,
  type RewardResponse,
} from '../core/reward.js';
import { CHECKER_OF_REWARD, type RewardMode } from '../core/vocabulary.js';

export interface RewardServerOptions {
  /** The mode of every batch that does not name its own. */
  mode: RewardMode;
  /** Defaults to 127.0.0.1: the reward runs next to the trainer and has no authentication. */
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
}

export interface RewardServer {
  /** `http://host:port`; the trainer's `LOOPTOOL_REWARD_URL`. */
  url: string;
  port: number;
  mode: RewardMode;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/** A label prepared for judging its group's completions, or why it cannot judge any. */
type Judge = { ok: true; checker: SampleChecker } | { ok: false; error: string };

function compileJudge(mode: RewardMode, item: RewardItem): Judge {
  const target = targetFromOutput(item.ground_truth);
  if (!target.ok) return { ok: false, error: `ground_truth: ${target.rejection.reason}` };
  const tools = toolsFromJson(item.tools ?? undefined, 'tools');
  if (!tools.ok) return { ok: false, error: `${tools.rejection.field}: ${tools.rejection.reason}` };
  // A label carries no conversation: the checker judges the reply against the target and the tools alone.
  const compiled = compileSampleChecker({
    sample: { tools: tools.value, messages: [], target: target.value },
    config: { mode: CHECKER_OF_REWARD[mode] },
  });
  return compiled.ok ? compiled : { ok: false, error: `ground_truth: ${compiled.error}` };
}

/**
 * Compiled labels of one batch: GRPO sends each label G times. Keyed by the tools, then the label, without joining the
 * two long strings into one key per item. Tools given as a list (rare: the exports write JSON text) are keyed by their
 * lossless JSON text, which reads back to the same tools (and keeps `5` and `5.0` in a schema apart); null: no tools.
 */
class JudgeCache {
  private readonly byTools = new Map<string | null, Map<string, Judge>>();
  private last: { tools: RewardItem['tools']; groundTruth: string; judge: Judge } | undefined;

  constructor(private readonly mode: RewardMode) {}

  judgeOf(item: RewardItem): Judge {
    // verl and TRL put a prompt's G completions next to each other: comparing with the previous item is cheaper than
    // hashing its tools and label again.
    const last = this.last;
    if (last && item.tools === last.tools && item.ground_truth === last.groundTruth) return last.judge;
    const tools = item.tools;
    const toolsKey =
      tools === undefined || tools === null ? null : typeof tools === 'string' ? tools : stringifyJson(tools);
    let byLabel = this.byTools.get(toolsKey);
    if (!byLabel) {
      byLabel = new Map();
      this.byTools.set(toolsKey, byLabel);
    }
    let judge = byLabel.get(item.ground_truth);
    if (!judge) {
      judge = compileJudge(this.mode, item);
      byLabel.set(item.ground_truth, judge);
    }
    this.last = { tools, groundTruth: item.ground_truth, judge };
    return judge;
  }
}

function replyOf(completion: RewardItem['completion']): ModelReply {
  if (typeof completion === 'string') return completion;
  return { content: completion.content ?? null, tool_calls: completion.tool_calls ?? null };
}

/** Why the checker rejects the reply, or null when it accepts it. */
function replyError(checker: SampleChecker, completion: RewardItem['completion']): string | null {
  try {
    const verdict = checker.check(replyOf(completion));
    return verdict.valid ? null : (verdict.errorType ?? 'invalid');
  } catch (err) {
    // The checker is meant never to throw on model output; if it does, one odd reply must not stop a training run.
    return `checker failed: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/**
 * Scores one batch: 1 where core/checker accepts the reply, else 0 with the reason. An item that cannot be judged (its
 * label or tools do not read) scores 0 with its error and leaves the rest of the batch alone.
 */
export function scoreRewardRequest(request: RewardRequest, defaultMode: RewardMode): RewardResponse {
  const mode = request.mode ?? defaultMode;
  const judges = new JudgeCache(mode);
  const scores: number[] = [];
  const errors: (string | null)[] = [];
  for (const item of request.items) {
    const judge = judges.judgeOf(item);
    if (!judge.ok) {
      scores.push(0);
      errors.push(judge.error);
      continue;
    }
    const error = replyError(judge.checker, item.completion);
    scores.push(error === null ? 1 : 0);
    errors.push(error);
  }
  return { mode, scores, errors };
}

/** A refused request: its HTTP status and every problem with its field. */
class RequestRefused extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems: string[] = [message],
  ) {
    super(message);
  }
}

const MAX_PROBLEMS = 20;

/**
 * Reads a request body. `JSON.parse` keeps strings exactly, so a batch of string completions and JSON-text tools
 * (what the exports write) takes the native parser; a batch with message completions or tool lists is read again
 * losslessly, because their numbers reach the checker and `5.0` must stay a float.
 */
export function parseRewardRequest(body: string): RewardRequest {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    const lossless = parseJson(body);
    if (lossless.ok) value = lossless.value;
    else {
      const { line, column, message } = lossless.error;
      throw new RequestRefused(400, `request body is not JSON: line ${line} column ${column}: ${message}`);
    }
  }
  if (carriesNumbers(value)) {
    const lossless = parseJson(body);
    if (lossless.ok) value = lossless.value;
  }
  const parsed = RewardRequest.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${joinPath('', issue.path) || '(request)'}: ${issue.message}`);
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  throw new RequestRefused(422, `invalid reward request: ${problems[0]}${more}`, problems.slice(0, MAX_PROBLEMS));
}

function carriesNumbers(value: unknown): boolean {
  const items = (value as { items?: unknown } | null)?.items;
  if (!Array.isArray(items)) return false;
  return items.some((item: unknown) => {
    if (typeof item !== 'object' || item === null) return false;
    const { completion, tools } = item as { completion?: unknown; tools?: unknown };
    return (typeof completion === 'object' && completion !== null) || Array.isArray(tools);
  });
}

// Generous: a GRPO step's batch (a few thousand completions of a few KB) is far below it.
const MAX_BODY_BYTES = 256 * 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new RequestRefused(413, `request body over ${MAX_BODY_BYTES} bytes: send the batch in chunks`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendRefusal(res: ServerResponse, refusal: RequestRefused): void {
  const body: RewardErrorResponse = { error: { message: refusal.message, problems: refusal.problems } };
  sendJson(res, refusal.status, body);
}

/** Starts the reward server and resolves once it listens. */
export async function startRewardServer(options: RewardServerOptions): Promise<RewardServer> {
  const { mode } = options;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const target = req.url ?? '/';
    const query = target.indexOf('?');
    const pathname = query < 0 ? target : target.slice(0, query);
    const route = `${req.method ?? 'GET'} ${pathname}`;
    if (route === `POST ${REWARD_SCORE_PATH}`) {
      const request = parseRewardRequest(await readBody(req));
      sendJson(res, 200, scoreRewardRequest(request, mode));
    } else if (route === `GET ${REWARD_HEALTH_PATH}`) {
      sendJson(res, 200, { status: 'ok', mode });
    } else if (pathname === REWARD_SCORE_PATH || pathname === REWARD_HEALTH_PATH) {
      throw new RequestRefused(405, `${req.method} is not allowed on ${pathname}`);
    } else {
      throw new RequestRefused(404, `no route ${pathname} (POST ${REWARD_SCORE_PATH}, GET ${REWARD_HEALTH_PATH})`);
    }
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof RequestRefused) {
        if (!res.headersSent && !res.destroyed) sendRefusal(res, err);
        return;
      }
      // Not the caller's fault: say so in the server's log (the trainer's, under with-reward-server.sh) as well.
      console.error('reward server: failed to answer', req.method, req.url, err);
      if (!res.headersSent && !res.destroyed)
        sendRefusal(res, new RequestRefused(500, err instanceof Error ? err.message : String(err)));
    });
  });
  // A trainer scores every step for hours; keep its connection between steps.
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
    port: address.port,
    mode,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
