import { readFileSync } from 'node:fs';
import path from 'node:path';
import { CHECKPOINT_MANIFEST_FILE, CheckpointManifest, TRAINING_PROGRESS_FILE } from '../../core/training.js';

/**
 * What every training backend reads from the files a recipe leaves (core/training.ts): its progress while it trains
 * and its manifest once it succeeded. The job's folder is on a filesystem the worker shares with the engine, so these
 * reads are the same whichever engine ran the job.
 */

/** A job's folder under `workDir/jobs/` (its `spec.json`, runner state), named after its key in file-safe characters. */
export function jobFolder(workDir: string, jobKey: string): string {
  return path.join(path.resolve(workDir), 'jobs', jobKey.replace(/[^A-Za-z0-9._-]/g, '_'));
}

/** A JSON file's value, or undefined while it is missing or half written. */
export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

/** The recipe's `progress.json` (`{step, total_steps}`); zeros before it wrote one. */
export function readProgress(outputDir: string): { step: number; totalSteps: number } {
  const progress = readJson<{ step?: number; total_steps?: number }>(path.join(outputDir, TRAINING_PROGRESS_FILE));
  return { step: progress?.step ?? 0, totalSteps: progress?.total_steps ?? 0 };
}

/** The recipe's `checkpoint.json`, validated; its path made absolute against the output folder. */
export function readManifest(
  outputDir: string,
): { ok: true; manifest: CheckpointManifest } | { ok: false; error: string } {
  const file = path.join(outputDir, CHECKPOINT_MANIFEST_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return { ok: false, error: `exited 0 but ${file} is missing or not JSON (${(err as Error).message})` };
  }
  const parsed = CheckpointManifest.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, error: `${file}: ${issue?.path.join('.') || '(manifest)'}: ${issue?.message ?? 'invalid'}` };
  }
  return { ok: true, manifest: { ...parsed.data, path: path.resolve(outputDir, parsed.data.path) } };
}
