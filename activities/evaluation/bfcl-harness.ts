/**
 * Runs BFCL's own harness (recipes/bfcl-eval/run.py in `.tools/py-bfcl`) against the deployed policy and reads back
 * its per-category scores. The run is a child process: its progress lines become heartbeats, cancelling the activity
 * kills it, and its exit code says whether a retry can help.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { ErrorType } from '../../core/errors.js';
import type { CategoryScore } from '../../core/stages/bfcl-overall.js';
import { projectPath } from '../../services/paths.js';

/** The runner's exit codes (recipes/bfcl-eval/run.py). */
const EXIT_TEMPORARY = 75;
const EXIT_REFUSED = 3;

export interface HarnessRun {
  python: string;
  /** The policy's OpenAI base URLs (`…/v1`) and the name it is served under. */
  baseUrls: string[];
  model: string;
  apiKey: string | undefined;
  categories: string[];
  maxPerCategory: number | undefined;
  /** Requests in flight at once (BFCL's `--num-threads`). */
  threads: number;
  maxTokens: number;
  /** The run's folder: BFCL's result and score files, kept so a retried run resumes where this one stopped. */
  workDir: string;
  signal: AbortSignal;
  onProgress: (progress: { done: number; total: number }) => void;
}

/**
 * The work folder of one evaluation: per loop and iteration, and per what decides the answers (model, servers,
 * categories, limit), so a retry resumes its own results and a resumed loop that serves another checkpoint under
 * another name starts afresh.
 */
export function harnessWorkDir(
  artifactsDir: string,
  key: { loopName: string; iteration: number },
  run: Pick<HarnessRun, 'model' | 'baseUrls' | 'categories' | 'maxPerCategory' | 'maxTokens'>,
): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([run.model, run.baseUrls, run.categories, run.maxPerCategory ?? null, run.maxTokens]))
    .digest('hex')
    .slice(0, 16);
  return path.join(artifactsDir, key.loopName, `iter-${key.iteration}`, 'bfcl-eval', digest);
}

/** Runs the harness once; resolves with its category scores, or throws a failure typed for Temporal's retry policy. */
export async function runBfclHarness(run: HarnessRun): Promise<CategoryScore[]> {
  mkdirSync(run.workDir, { recursive: true });
  const specFile = path.join(run.workDir, 'spec.json');
  writeFileSync(
    specFile,
    JSON.stringify({
      baseUrls: run.baseUrls,
      model: run.model,
      categories: run.categories,
      maxPerCategory: run.maxPerCategory ?? null,
      threads: run.threads,
      maxTokens: run.maxTokens,
      requestTimeoutSeconds: 600,
      workDir: run.workDir,
    }),
  );
  const child = spawn(run.python, [projectPath('recipes', 'bfcl-eval', 'run.py'), specFile], {
    cwd: run.workDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      // One thread per Python process (numpy, pandas): the worker's cores belong to its activities.
      OMP_NUM_THREADS: '1',
      MKL_NUM_THREADS: '1',
      OPENBLAS_NUM_THREADS: '1',
      PYTHONUNBUFFERED: '1',
      // The key travels in the environment only (never the spec file or the workflow history); vLLM without
      // `--api-key` ignores it.
      OPENAI_API_KEY: run.apiKey ?? 'EMPTY',
    },
  });
  const kill = () => child.kill('SIGKILL');
  run.signal.addEventListener('abort', kill, { once: true });
  let stderr = '';
  let pending = '';
  let result: CategoryScore[] | undefined;
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-16_000);
  });
  child.stdout.on('data', (chunk: Buffer) => {
    pending += chunk.toString('utf8');
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      let event: { event?: string; done?: number; total?: number; categories?: CategoryScore[] };
      try {
        event = JSON.parse(line) as typeof event;
      } catch {
        continue;
      }
      if (event.event === 'progress') run.onProgress({ done: event.done ?? 0, total: event.total ?? 0 });
      else if (event.event === 'result') result = event.categories ?? [];
    }
  });
  const { code, error } = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.on('error', (err) => resolve({ code: null, error: err }));
    child.on('close', (exitCode) => resolve({ code: exitCode }));
  }).finally(() => run.signal.removeEventListener('abort', kill));
  if (run.signal.aborted) throw ApplicationFailure.retryable('the BFCL harness was cancelled');
  const tail = stderr
    .split('\n')
    .filter((line) => line.trim() && !/^-+$/.test(line.trim()))
    .slice(-12)
    .join('\n');
  if (error)
    throw ApplicationFailure.nonRetryable(`cannot run ${run.python}: ${error.message}`, ErrorType.ConfigInvalid);
  if (code === EXIT_TEMPORARY)
    throw ApplicationFailure.retryable(
      `BFCL harness against ${run.baseUrls.join(', ')}: ${tail}`,
      ErrorType.ModelServerUnavailable,
    );
  if (code === EXIT_REFUSED)
    throw ApplicationFailure.nonRetryable(
      `BFCL harness against ${run.baseUrls.join(', ')} (model ${run.model}): ${tail}`,
      ErrorType.ModelRequestRejected,
    );
  if (code !== 0 || !result)
    // A crash of the harness itself repeats on every retry: fail with its traceback (`loop resume` continues later).
    throw ApplicationFailure.nonRetryable(
      `BFCL harness failed (exit ${code ?? 'signal'}; work folder ${run.workDir}):\n${tail}`,
      ErrorType.ConfigInvalid,
    );
  return result;
}
