/**
 * The simulated checkpoint: what a "LoRA adapter" of the sim student holds. It is the cumulative exposure the policy
 * has had per skill, so loading it into the server changes the student's answers exactly as training said.
 */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { SKILLS, type Exposure, type Skill } from './skills.js';

export const CHECKPOINT_FILE = 'checkpoint.json';
export const CHECKPOINT_FORMAT = 'looptool-sim-checkpoint/v1';

const Counts = z.record(z.string(), z.number().nonnegative());

/** The file `output_dir/checkpoint.json` the trainer writes and the server loads as an adapter. */
export const SimCheckpoint = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  /** Content-derived: the same base, data and epochs give the same id (and so the same student). */
  id: z.string().min(1),
  base: z.string().nullable(),
  /** Checkpoint ids from the first fine-tune to this one. */
  lineage: z.array(z.string()),
  exposure: z.object({ good: Counts, bad: Counts }),
  training: z.object({
    job_key: z.string(),
    dataset_path: z.string(),
    dataset_sha256: z.string(),
    epochs: z.number().int().positive(),
    samples: z.number().int().nonnegative(),
    correct_labels: z.number().int().nonnegative(),
    wrong_labels: z.number().int().nonnegative(),
    unknown_labels: z.number().int().nonnegative(),
  }),
});
export type SimCheckpoint = z.infer<typeof SimCheckpoint>;

/** The exposure of a checkpoint, keeping only skills this version of the sim knows. */
export function exposureOf(checkpoint: SimCheckpoint | undefined): Exposure {
  const pick = (counts: Record<string, number> | undefined): Partial<Record<Skill, number>> => {
    const out: Partial<Record<Skill, number>> = {};
    for (const skill of SKILLS) if (counts?.[skill] !== undefined) out[skill] = counts[skill];
    return out;
  };
  return { good: pick(checkpoint?.exposure.good), bad: pick(checkpoint?.exposure.bad) };
}

/** Where the checkpoint file of a path is: the path itself when it names the file, else `<dir>/checkpoint.json`. */
export async function checkpointFile(location: string): Promise<string> {
  const info = await stat(location);
  return info.isDirectory() ? path.join(location, CHECKPOINT_FILE) : location;
}

/** Reads and validates a checkpoint (a directory or the file); throws with the reason when it is not one. */
export async function readCheckpoint(location: string): Promise<SimCheckpoint> {
  const file = await checkpointFile(location);
  const text = await readFile(file, 'utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not JSON: ${(err as Error).message}`, { cause: err });
  }
  const parsed = SimCheckpoint.safeParse(value);
  if (!parsed.success)
    throw new Error(`${file} is not a sim checkpoint: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

/** Writes `dir/checkpoint.json` atomically (temp file, then rename), so a reader never sees half a checkpoint. */
export async function writeCheckpoint(dir: string, checkpoint: SimCheckpoint): Promise<string> {
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, CHECKPOINT_FILE);
  const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(temp, `${JSON.stringify(checkpoint, null, 2)}\n`, 'utf8');
  await rename(temp, file);
  return file;
}
