import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/** Stages of one iteration, in order (DESIGN.md §5). */
export const STAGES = ['train', 'deploy', 'probe', 'judge', 'expand', 'assemble', 'evaluate'] as const;
export type Stage = (typeof STAGES)[number] | 'setup' | 'done';

export interface StageProgress {
  done: number;
  total: number;
  /** Stage-specific counts (matched, relabeled, accepted, …). */
  counts: Record<string, number>;
}

export interface IterationSummary {
  iteration: number;
  /** The dataset version D_j trained on. */
  dataset: string;
  countsByRole: Partial<Record<string, number>>;
  probe?: Record<string, number>;
  judge?: Record<string, number>;
  expand?: Record<string, number>;
  /** The next round's dataset, when this iteration assembled one. */
  nextDataset?: string;
  /** Held-out accuracy (BFCL v3 overall) of this iteration's policy. */
  accuracy?: number | null;
  checkpoint?: string | null;
}

export interface LoopStatus {
  loopName: string;
  iteration: number;
  iterations: number;
  stage: Stage;
  paused: boolean;
  stopAfterIteration: boolean;
  progress: Partial<Record<Stage, StageProgress>>;
  /** Base-model accuracy before the first round (iteration 0), when eval sets are configured. */
  baselineAccuracy?: number | null;
  history: IterationSummary[];
  pendingInjections: string[];
}

export interface InjectDataInput {
  /** A staging batch that `looptool inject` imported and validated. */
  stagingBatchId: string;
  /** Makes a retried update a no-op. */
  idempotencyKey: string;
}

/**
 * Updates (the caller gets the new state back, and validators reject bad input before anything reaches history) and
 * their signal twins for fire-and-forget senders such as the UI's "Send Signal".
 */
export const pauseUpdate = defineUpdate<LoopStatus, []>('pause');
export const resumeUpdate = defineUpdate<LoopStatus, []>('resume');
export const injectDataUpdate = defineUpdate<LoopStatus, [InjectDataInput]>('injectData');
export const stopAfterIterationUpdate = defineUpdate<LoopStatus, []>('stopAfterIteration');
export const pauseSignal = defineSignal<[]>('pauseSignal');
export const resumeSignal = defineSignal<[]>('resumeSignal');
export const statusQuery = defineQuery<LoopStatus>('status');

/** Sent by the loop to a running stage workflow, so a pause holds its next batch too. */
export const stagePausedSignal = defineSignal<[boolean]>('stagePaused');
export const stageProgressQuery = defineQuery<StageProgress>('stageProgress');
