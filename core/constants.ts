import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Task queues. `control` runs workflows and database activities; `llm` runs probe/judge/expand/evaluate batches with
 * concurrency bounded per model endpoint; `gpu` runs training dispatch and deployment, one at a time per GPU pool, so
 * slow HTTP work never starves the GPU slot and vice versa.
 */
export const TASK_QUEUES = {
  control: 'looptool-control',
  llm: 'looptool-llm',
  gpu: 'looptool-gpu',
} as const;
export type TaskQueueName = (typeof TASK_QUEUES)[keyof typeof TASK_QUEUES];

/** The three queues of one worker set, by role. */
export type TaskQueues = Record<keyof typeof TASK_QUEUES, string>;

/**
 * The queues with a suffix appended (`looptool-llm-blue`): separate sets of workers on one namespace, e.g. a canary
 * worker version, or test runs that must not take each other's tasks. No suffix gives {@link TASK_QUEUES}.
 */
export function taskQueues(suffix = ''): TaskQueues {
  return {
    control: `${TASK_QUEUES.control}${suffix}`,
    llm: `${TASK_QUEUES.llm}${suffix}`,
    gpu: `${TASK_QUEUES.gpu}${suffix}`,
  };
}

/** A GPU pool's name, as a worker's LOOPTOOL_GPU_POOLS and a loop's `training.pool` write it. */
export const GPU_POOL_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/**
 * The task queue of a named GPU pool: a worker serves it with the pool's concurrency, and every loop that names the
 * pool sends its training there, so loops sharing the pool queue for it instead of over-subscribing its GPUs.
 */
export function gpuPoolQueue(queues: TaskQueues, pool: string): string {
  return `${queues.gpu}:${pool}`;
}

/** Typed search attributes the UI filters on. Their names are registered with the server at start (dev server and compose). */
export const SEARCH_ATTRIBUTES = {
  loopName: defineSearchAttributeKey('LoopName', SearchAttributeType.KEYWORD),
  loopIteration: defineSearchAttributeKey('LoopIteration', SearchAttributeType.INT),
  loopStage: defineSearchAttributeKey('LoopStage', SearchAttributeType.KEYWORD),
  loopPaused: defineSearchAttributeKey('LoopPaused', SearchAttributeType.BOOL),
  loopAccuracy: defineSearchAttributeKey('LoopAccuracy', SearchAttributeType.DOUBLE),
  /** What the loop waits for (the first outage's reason), unset while it makes progress. */
  loopWaitingFor: defineSearchAttributeKey('LoopWaitingFor', SearchAttributeType.KEYWORD),
  loopWaitingSince: defineSearchAttributeKey('LoopWaitingSince', SearchAttributeType.DATETIME),
} as const;

const CLI_TYPE_NAMES: Record<SearchAttributeType, string> = {
  [SearchAttributeType.TEXT]: 'Text',
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DOUBLE]: 'Double',
  [SearchAttributeType.BOOL]: 'Bool',
  [SearchAttributeType.DATETIME]: 'Datetime',
  [SearchAttributeType.KEYWORD_LIST]: 'KeywordList',
};

/** The attributes as `Name=Type`, the form `temporal server start-dev --search-attribute` and `temporal operator` take. */
export function searchAttributeCliSpecs(): string[] {
  return Object.values(SEARCH_ATTRIBUTES).map((key) => `${key.name}=${CLI_TYPE_NAMES[key.type]}`);
}

/** Workflow ids are derived from the loop name, so starting the same loop twice finds the running one. */
export const workflowIds = {
  loop: (loopName: string) => `loop/${loopName}`,
  stage: (loopName: string, iteration: number, stage: string) => `loop/${loopName}/iter-${iteration}/${stage}`,
} as const;

/**
 * Batches one stage-workflow run schedules before it continues as new: a million-sample stage at 200 per batch is
 * 5,000 batches, about 10 runs of some 3,000 history events each, far below Temporal's limits.
 */
export const STAGE_BATCHES_PER_RUN = 500;

/** Loop names become workflow ids and search attribute values: keep them short, printable and free of slashes. */
export const LOOP_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/**
 * The evaluation set under which the seed pool's held-out slice is scored (data.heldOutFraction). No configured
 * evaluation set may take this name (core/config.ts refuses it).
 */
export const HELD_OUT_EVAL_SET = 'held-out';
