import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { InjectDataInput, IterationSummary } from './inputs.js';
import type { LoopPhase, Stage } from './vocabulary.js';

export type { IterationSummary } from './inputs.js';

export interface StageProgress {
  done: number;
  total: number;
  /** Stage-specific counts (matched, relabeled, accepted, …). */
  counts: Record<string, number>;
  /** Batches waiting out an outage. */
  waiting?: Waiting[];
}

/** Something the loop waits for: an outage its activities keep running into (see workflows/patience.ts). */
export interface Waiting {
  /** The work that waits ("probe batch 3", "train π_2", "assemble D_3"). */
  what: string;
  /** The last failure, naming the server or address ("…: connect ECONNREFUSED 127.0.0.1:5432"). */
  reason: string;
  /** When the wait began (ISO 8601, workflow time). */
  since: string;
  /** Rounds of the activity's own retries spent so far. */
  rounds: number;
}

export interface LoopStatus {
  loopName: string;
  iteration: number;
  iterations: number;
  stage: LoopPhase;
  paused: boolean;
  stopAfterIteration: boolean;
  /** What each finished batched stage of this iteration counted. */
  progress: Partial<Record<Stage, StageProgress>>;
  /** Base-model accuracy before the first round (iteration 0), when eval sets are configured. */
  baselineAccuracy?: number | null;
  /** The base model's accuracy on the seed pool's held-out slice (data.heldOutFraction), once scored. */
  baselineHeldOutAccuracy?: number | null;
  history: IterationSummary[];
  pendingInjections: string[];
  /** Outages the loop (or its running stage) is waiting out, oldest first; empty when it is making progress. */
  waiting: Waiting[];
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
/** Sent by a stage workflow to its loop whenever what its batches wait for changes, so the loop can show it. */
export const stageWaitingSignal = defineSignal<[Waiting[]]>('stageWaiting');
