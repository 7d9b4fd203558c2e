import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { REWARD_SCORE_PATH, type RewardItem, type RewardResponse } from '../core/reward.js';
import type { RewardMode } from '../core/vocabulary.js';
import { formatTable } from '../client/format.js';
import { perSecond as rate, type Figure } from './lib/figures.js';
import { processCpuSeconds } from './lib/process-cpu.js';
import { projectPath } from '../services/paths.js';
import { parseRewardRequest, scoreRewardRequest } from '../services/reward-server.js';
import { bfclRewardCases } from '../test/helpers/reward-cases.js';

/**
 * `reward` section: scores per second through `looptool reward serve` as a trainer uses it. The server runs as its own
 * process, started from the compiled CLI as recipes/reward/with-reward-server.sh starts it; this process plays the
 * trainer and posts GRPO-shaped batches one after another over one kept-alive connection: BATCH_LABELS labels (1–3
 * calls each: BFCL v4 questions, their tools as JSON text) × G completions (right, perturbed and wrong ones), 1,024
 * items a batch. Request bodies are built before timing, so the figure is the server's work (parse, check, answer)
 * plus the transport. The same batches scored in this process without HTTP show what the transport costs, and CPU
 * time per score (the server process's, from /proc) is printed next to the wall-clock rates because it depends far
 * less on what else the machine is running. Target (issue 10): at least 20,000 scores/s through the server, per mode.
 */
const G = 8;
const BATCH_LABELS = 128;
const MIN_CALLS = 1;
const MAX_CALLS = 3;
const WARMUP_MS = 1000;
const MIN_MS = 3000;
const TARGET_SCORES_PER_SECOND = 20_000;
const LOOPTOOL_BIN = projectPath('bin', 'looptool.js');

interface Batch {
  body: string;
  items: number;
}

/** GRPO groups: G completions of one label, cycling through the completions the reward cases have for it. */
function groups(): RewardItem[][] {
  const byLabel = new Map<string, RewardItem[]>();
  for (const c of bfclRewardCases()) {
    const calls = c.ground_truth.split('<tool_call>').length - 1;
    if (calls < MIN_CALLS || calls > MAX_CALLS) continue;
    const key = `${c.tools}\u0000${c.ground_truth}`;
    const group = byLabel.get(key) ?? [];
    group.push({ completion: c.completion, ground_truth: c.ground_truth, tools: c.tools });
    byLabel.set(key, group);
  }
  return [...byLabel.values()].map((completions) =>
    Array.from({ length: G }, (_, i) => completions[i % completions.length] as RewardItem),
  );
}

function batches(mode: RewardMode): Batch[] {
  const all = groups();
  const out: Batch[] = [];
  for (let start = 0; start + BATCH_LABELS <= all.length; start += BATCH_LABELS) {
    const items = all.slice(start, start + BATCH_LABELS).flat();
    out.push({ body: JSON.stringify({ mode, items }), items: items.length });
  }
  return out;
}

interface ServerProcess {
  url: string;
  /** CPU seconds the server process has used so far (user + system) where the OS tells (Linux), else undefined. */
  cpuSeconds(): number | undefined;
  stop(): Promise<void>;
}

async function startServer(scratch: string): Promise<ServerProcess> {
  const ready = path.join(scratch, 'url');
  const child = spawn(process.execPath, [LOOPTOOL_BIN, 'reward', 'serve', '--port', '0', '--ready-file', ready], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  for (let i = 0; !existsSync(ready); i++) {
    if (child.exitCode !== null || i > 1200) throw new Error(`reward server did not start: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    url: readFileSync(ready, 'utf8').trim(),
    cpuSeconds: () => (child.pid === undefined ? undefined : processCpuSeconds(child.pid)),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

async function post(url: string, batch: Batch): Promise<number> {
  const response = await fetch(`${url}${REWARD_SCORE_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: batch.body,
  });
  if (response.status !== 200) throw new Error(`reward server answered ${response.status}: ${await response.text()}`);
  const { scores } = (await response.json()) as RewardResponse;
  // A server that answers fast but wrong must not pass as fast.
  if (scores.length !== batch.items || !scores.includes(1) || !scores.includes(0))
    throw new Error(`implausible scores for a batch of ${batch.items}`);
  return scores.length;
}

interface Timing {
  scores: number;
  seconds: number;
  /** CPU seconds the scoring process spent in the measured part. */
  cpuSeconds: number | undefined;
}

/** Runs `pass` (which returns the scores it produced) for a warm-up, then for at least MIN_MS measured. */
async function timed(pass: () => Promise<number> | number, cpuSeconds: () => number | undefined): Promise<Timing> {
  const warmupEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmupEnd) await pass();
  const cpuStart = cpuSeconds();
  const start = performance.now();
  let scores = 0;
  let elapsed: number;
  do {
    scores += await pass();
    elapsed = performance.now() - start;
  } while (elapsed < MIN_MS);
  const cpuEnd = cpuSeconds();
  return {
    scores,
    seconds: elapsed / 1000,
    cpuSeconds: cpuStart === undefined || cpuEnd === undefined ? undefined : cpuEnd - cpuStart,
  };
}

const ownCpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

export async function run(): Promise<Figure[]> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-bench-reward-'));
  const server = await startServer(scratch);
  const rows: (string | number)[][] = [];
  const verdicts: string[] = [];
  const figures: Figure[] = [];
  try {
    for (const mode of ['exact', 'bfcl_ast'] as const) {
      const work = batches(mode);
      let next = 0;
      const http = await timed(() => post(server.url, work[next++ % work.length] as Batch), server.cpuSeconds);
      const local = await timed(
        () => work.reduce((sum, b) => sum + scoreRewardRequest(parseRewardRequest(b.body), mode).scores.length, 0),
        ownCpuSeconds,
      );
      const row = (label: string, t: Timing) => [
        `${mode}: ${label}`,
        t.scores,
        Math.round(t.scores / t.seconds),
        Number(((t.seconds * 1e6) / t.scores).toFixed(1)),
        t.cpuSeconds === undefined ? '' : Number(((t.cpuSeconds * 1e6) / t.scores).toFixed(1)),
      ];
      rows.push(row(`through the server (HTTP, ${work[0]?.items} a batch)`, http));
      rows.push(row('same batches in process (parse + score)', local));
      const perSecond = http.scores / http.seconds;
      figures.push({
        section: 'reward',
        figure: `reward ${mode}: scores through looptool reward serve`,
        value: rate(http.scores, http.seconds),
        target: `≥ ${TARGET_SCORES_PER_SECOND.toLocaleString('en-US')}/s`,
        met: perSecond >= TARGET_SCORES_PER_SECOND,
      });
      verdicts.push(
        `reward ${mode}: ${Math.round(perSecond).toLocaleString('en-US')} scores/s through the server ` +
          `(target ≥ ${TARGET_SCORES_PER_SECOND.toLocaleString('en-US')}): ${perSecond >= TARGET_SCORES_PER_SECOND ? 'PASS' : 'FAIL'}`,
      );
    }
  } finally {
    await server.stop();
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log(
    `== reward: looptool reward serve, ${BATCH_LABELS} labels (${MIN_CALLS}–${MAX_CALLS} calls) × G=${G} a batch; ` +
      `node ${process.version}, ${os.cpus().length} cores, load ${os.loadavg()[0]?.toFixed(1)}`,
  );
  console.log(formatTable(['workload', 'scores', 'scores/s', 'µs/score', 'CPU µs/score (scorer)'], rows));
  for (const line of verdicts) console.log(line);
  return figures;
}
