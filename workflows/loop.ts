import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  executeChild,
  getExternalWorkflowHandle,
  log,
  ParentClosePolicy,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { LoopConfig } from '../core/config.js';
import { SEARCH_ATTRIBUTES, workflowIds } from '../core/constants.js';
import {
  injectDataUpdate,
  type IterationSummary,
  type LoopStatus,
  pauseSignal,
  pauseUpdate,
  resumeSignal,
  resumeUpdate,
  type Stage,
  stagePausedSignal,
  statusQuery,
  stopAfterIterationUpdate,
} from '../core/messages.js';
import { DEFAULT_QUEUES, type LoopQueues, loopActivities } from './activity-proxies.js';
import { stageWorkflow, type StageWorkflowInput } from './stage.js';

/** A stage child's input without what the loop fills in itself (distributed over the stage variants). */
type StageRequest = StageWorkflowInput extends infer T ? (T extends StageWorkflowInput ? Omit<T, 'loopName' | 'iteration' | 'queues' | 'paused' | 'concurrency' | 'batchHeartbeatSeconds'> : never) : never;

/** What one run carries to the next (continue-as-new per iteration): ids and counts, never samples. */
export interface LoopState {
  /** The iteration this run executes. */
  iteration: number;
  /** D_j, the version this iteration trains on and probes. */
  currentVersionId: number;
  currentVersionRef: string;
  currentCounts: Partial<Record<string, number>>;
  seedVersionId: number;
  budget: number;
  /** π_{j-1}: the checkpoint this iteration starts from (null: the base model). */
  checkpoint: string | null;
  paused: boolean;
  stopAfterIteration: boolean;
  pendingInjections: string[];
  /** Idempotency keys of injectData calls already taken (bounded: at most one per update, ≤ 2000 per run). */
  injectionKeys: string[];
  baselineAccuracy?: number | null;
  history: IterationSummary[];
}

export interface LoopWorkflowInput {
  loopName: string;
  config: LoopConfig;
  configHash: string;
  /** Absent on the first run. */
  state?: LoopState;
  queues?: LoopQueues;
}

export interface LoopResult {
  loopName: string;
  iterations: number;
  finalDataset: string;
  baselineAccuracy: number | null;
  history: IterationSummary[];
}

/**
 * The LoopTool loop (`loop/<name>`): one iteration per run, continuing as new with a small typed state. Each iteration:
 * train π_j on D_j (GPU queue) → deploy it → probe D_j → judge the mismatches → expand the verified errors → assemble
 * D_{j+1} by Eq. 5 → evaluate π_j on the held-out sets. Batched stages run as child workflows. Pause holds every new
 * batch, training job and deployment until resume; in-flight work finishes. Everything it writes is idempotent, so a
 * worker crash at any point replays into the same datasets.
 */
export async function loopWorkflow(input: LoopWorkflowInput): Promise<LoopResult> {
  const { config } = input;
  const queues = input.queues ?? DEFAULT_QUEUES;
  const act = loopActivities(queues, { batchSeconds: config.timeouts.batchHeartbeatSeconds, trainSeconds: config.timeouts.trainHeartbeatSeconds });
  let stage: Stage = 'setup';
  let runningChild: string | undefined;
  const progress: LoopStatus['progress'] = {};
  const state: LoopState = input.state ?? (await firstState(input, act));
  const j = state.iteration;

  const status = (): LoopStatus => ({
    loopName: input.loopName,
    iteration: j,
    iterations: config.iterations,
    stage,
    paused: state.paused,
    stopAfterIteration: state.stopAfterIteration,
    progress,
    ...(state.baselineAccuracy !== undefined ? { baselineAccuracy: state.baselineAccuracy } : {}),
    history: state.history,
    pendingInjections: state.pendingInjections,
  });
  const setPaused = async (paused: boolean) => {
    if (state.paused === paused) return;
    state.paused = paused;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.loopPaused, value: paused }]);
    refreshDetails();
    if (runningChild) await getExternalWorkflowHandle(runningChild).signal(stagePausedSignal, paused).catch(() => {});
  };
  const refreshDetails = () => setCurrentDetails(detailsMarkdown(status()));

  setHandler(statusQuery, status);
  setHandler(pauseUpdate, async () => {
    await setPaused(true);
    return status();
  });
  setHandler(
    resumeUpdate,
    async () => {
      await setPaused(false);
      return status();
    },
    {
      validator: () => {
        if (!state.paused) throw ApplicationFailure.create({ message: `loop ${input.loopName} is not paused`, nonRetryable: true });
      },
    },
  );
  setHandler(pauseSignal, () => void setPaused(true));
  setHandler(resumeSignal, () => void setPaused(false));
  setHandler(
    injectDataUpdate,
    (injection) => {
      if (!state.injectionKeys.includes(injection.idempotencyKey)) {
        state.injectionKeys.push(injection.idempotencyKey);
        state.pendingInjections.push(injection.stagingBatchId);
      }
      refreshDetails();
      return status();
    },
    {
      validator: (injection) => {
        if (!injection?.stagingBatchId || !/^injection-[0-9a-f-]{36}$/.test(injection.stagingBatchId)) {
          throw ApplicationFailure.create({ message: 'stagingBatchId must name a batch staged by `looptool inject`', nonRetryable: true });
        }
        if (!injection.idempotencyKey || injection.idempotencyKey.length > 200) {
          throw ApplicationFailure.create({ message: 'idempotencyKey must be 1–200 characters', nonRetryable: true });
        }
      },
    },
  );
  setHandler(stopAfterIterationUpdate, () => {
    state.stopAfterIteration = true;
    refreshDetails();
    return status();
  });

  const enter = async (next: Stage) => {
    // The pause gate: nothing new starts while paused; whatever was in flight has finished by the time we get here.
    await condition(() => !state.paused);
    stage = next;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.loopStage, value: next }]);
    refreshDetails();
  };
  const runStage = async (child: StageRequest) => {
    const workflowId = workflowIds.stage(input.loopName, j, child.stage);
    runningChild = workflowId;
    try {
      const counts = await executeChild(stageWorkflow, {
        workflowId,
        taskQueue: queues.control,
        parentClosePolicy: ParentClosePolicy.TERMINATE,
        args: [{ ...child, loopName: input.loopName, iteration: j, queues, paused: state.paused, concurrency: config.concurrency.batches, batchHeartbeatSeconds: config.timeouts.batchHeartbeatSeconds } as StageWorkflowInput],
      });
      progress[child.stage] = { done: 1, total: 1, counts };
      return counts;
    } finally {
      runningChild = undefined;
    }
  };

  upsertSearchAttributes([
    { key: SEARCH_ATTRIBUTES.loopName, value: input.loopName },
    { key: SEARCH_ATTRIBUTES.loopIteration, value: j },
    { key: SEARCH_ATTRIBUTES.loopPaused, value: state.paused },
  ]);
  upsertMemo({ configHash: input.configHash, dataset: state.currentVersionRef, checkpoint: state.checkpoint });

  const summary: IterationSummary = { iteration: j, dataset: state.currentVersionRef, countsByRole: state.currentCounts };
  const policyEndpoints = { baseUrls: config.models.policy.baseUrls, maxConcurrency: config.models.policy.maxConcurrency };
  let policyModel = config.models.policy.model;
  let checkpoint = state.checkpoint;

  if (!(config.probeFirst && j === 1)) {
    await enter('train');
    const trained = await act.summarized('train', `train π_${j} on ${state.currentVersionRef}`).trainIteration({
      loopName: input.loopName,
      iteration: j,
      versionId: state.currentVersionId,
      baseCheckpoint: state.checkpoint,
      training: config.training,
    });
    checkpoint = trained.checkpointUri;
    upsertMemo({ checkpoint });
    await enter('deploy');
    policyModel = (await act.summarized('deploy', `deploy π_${j}`).deployCheckpoint({ loopName: input.loopName, iteration: j, checkpointUri: checkpoint, policyBaseUrls: config.models.policy.baseUrls })).model;
  }
  summary.checkpoint = checkpoint;

  const checker = { mode: config.reward === 'bfcl_ast' ? ('bfcl' as const) : ('exact' as const) };
  await enter('probe');
  summary.probe = await runStage({
    stage: 'probe',
    versionId: state.currentVersionId,
    batchSize: config.probe.batchSize,
    settings: { versionId: state.currentVersionId, policy: { ...policyEndpoints, model: policyModel }, checker, maxTokens: config.probe.maxTokens },
  });
  await enter('judge');
  summary.judge = await runStage({
    stage: 'judge',
    batchSize: config.judge.batchSize,
    settings: {
      judge: { baseUrls: config.models.judge.baseUrls, maxConcurrency: config.models.judge.maxConcurrency, model: config.models.judge.model },
      seed: config.seed,
      votes: config.judge.votes,
      voteTemperature: config.judge.voteTemperature,
      parseRetries: config.judge.parseRetries,
    },
  });
  await enter('expand');
  const judgeModel = { baseUrls: config.models.judge.baseUrls, maxConcurrency: config.models.judge.maxConcurrency, model: config.models.judge.model };
  summary.expand = await runStage({
    stage: 'expand',
    batchSize: config.expand.batchSize,
    settings: {
      generator: { baseUrls: config.models.generator.baseUrls, maxConcurrency: config.models.generator.maxConcurrency, model: config.models.generator.model },
      ...(config.expand.validate ? { validator: judgeModel } : {}),
      seed: config.seed,
      k: config.expand.k,
      maxAttempts: config.expand.maxAttempts,
    },
  });

  const lastIteration = j >= config.iterations || state.stopAfterIteration;
  let next: { versionId: number; ref: string; countsByRole: Partial<Record<string, number>> } | undefined;
  if (!lastIteration) {
    await enter('assemble');
    const injections = [...state.pendingInjections];
    const assembled = await act.summarized('db', `assemble D_${j + 1} (Eq. 5)`).assembleNextVersion({
      loopName: input.loopName,
      iteration: j,
      currentVersionId: state.currentVersionId,
      seedVersionId: state.seedVersionId,
      budget: state.budget,
      seedNewCount: Math.round(state.budget * config.data.seedNewFraction * config.data.seedNewDecay ** (j - 1)),
      seed: config.seed,
      configHash: input.configHash,
      injectBatchIds: injections,
    });
    if (assembled.skippedInjections.length > 0) log.warn('injections skipped (not ready or merged elsewhere)', { batches: assembled.skippedInjections });
    state.pendingInjections = state.pendingInjections.filter((id) => !injections.includes(id));
    next = { versionId: assembled.versionId, ref: assembled.ref, countsByRole: assembled.countsByRole };
    summary.nextDataset = assembled.ref;
  }

  if (config.evaluation.sets.length > 0) {
    await enter('evaluate');
    summary.accuracy = await evaluate(act, input, j, { ...policyEndpoints, model: policyModel });
    if (summary.accuracy !== null) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.loopAccuracy, value: summary.accuracy }]);
  }
  state.history.push(summary);

  if (!next || state.stopAfterIteration) {
    stage = 'done';
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.loopStage, value: 'done' }]);
    refreshDetails();
    await condition(allHandlersFinished);
    return {
      loopName: input.loopName,
      iterations: j,
      finalDataset: next?.ref ?? state.currentVersionRef,
      baselineAccuracy: state.baselineAccuracy ?? null,
      history: state.history,
    };
  }
  await condition(allHandlersFinished);
  return continueAsNew<typeof loopWorkflow>({
    ...input,
    state: {
      ...state,
      iteration: j + 1,
      currentVersionId: next.versionId,
      currentVersionRef: next.ref,
      currentCounts: next.countsByRole,
      checkpoint,
    },
  });
}

/** The first run: record the loop, draw D_1 from the seed pool, and score the base model (iteration 0). */
async function firstState(input: LoopWorkflowInput, act: ReturnType<typeof loopActivities>): Promise<LoopState> {
  const { config } = input;
  await act.db.registerLoop({ loopName: input.loopName, workflowId: workflowIds.loop(input.loopName), config: config as unknown as Record<string, unknown> });
  const initial = await act.db.createInitialVersion({
    loopName: input.loopName,
    seedDataset: config.data.seedDataset,
    ...(config.data.initialSize ? { size: config.data.initialSize } : {}),
    seed: config.seed,
    configHash: input.configHash,
  });
  const state: LoopState = {
    iteration: 1,
    currentVersionId: initial.versionId,
    currentVersionRef: initial.ref,
    currentCounts: initial.countsByRole,
    seedVersionId: initial.seedVersionId,
    budget: config.data.budget ?? initial.memberCount,
    checkpoint: null,
    paused: false,
    stopAfterIteration: false,
    pendingInjections: [],
    injectionKeys: [],
    history: [],
  };
  if (config.evaluation.sets.length > 0) {
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.loopStage, value: 'evaluate' }]);
    state.baselineAccuracy = await evaluate(act, input, 0, {
      baseUrls: config.models.policy.baseUrls,
      maxConcurrency: config.models.policy.maxConcurrency,
      model: config.models.policy.model,
    });
  }
  return state;
}

async function evaluate(
  act: ReturnType<typeof loopActivities>,
  input: LoopWorkflowInput,
  iteration: number,
  policy: { baseUrls: string[]; maxConcurrency: number; model: string },
): Promise<number | null> {
  let overall: number | null = null;
  for (const set of input.config.evaluation.sets) {
    await Promise.all(
      set.files.map((file) =>
        act.summarized('llm', `evaluate ${iteration === 0 ? 'the base model' : `π_${iteration}`} on ${file.questions.split('/').pop()}`).evaluateFile({ loopName: input.loopName, iteration, evalSet: set.name, file, policy }),
      ),
    );
    const summary = await act.db.summarizeEvaluation({ loopName: input.loopName, iteration, evalSet: set.name });
    overall ??= summary.overall;
  }
  return overall;
}

function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? '–' : `${(value * 100).toFixed(1)}%`;
}

/** The UI's "current details": where the loop is and what each iteration did, as a small markdown table. */
function detailsMarkdown(status: LoopStatus): string {
  const lines = [
    `**${status.loopName}**: iteration ${status.iteration}/${status.iterations}, stage **${status.stage}**${status.paused ? ' (**paused**)' : ''}${status.stopAfterIteration ? ', stopping after this iteration' : ''}`,
    '',
    '| iter | dataset | error seeds | relabeled | expanded | high PPL | seed-new | accuracy |',
    '|---|---|---|---|---|---|---|---|',
    `| 0 | base model | | | | | | ${percent(status.baselineAccuracy)} |`,
    ...status.history.map(
      (h) =>
        `| ${h.iteration} | ${h.dataset} | ${h.countsByRole.error_seed ?? 0} | ${h.countsByRole.relabeled ?? 0} | ${h.countsByRole.expanded ?? 0} | ${h.countsByRole.high_ppl ?? 0} | ${(h.countsByRole.seed_new ?? 0) + (h.countsByRole.seed ?? 0)} | ${percent(h.accuracy)} |`,
    ),
  ];
  if (status.pendingInjections.length > 0) lines.push('', `Injections waiting for the next dataset: ${status.pendingInjections.length}`);
  return lines.join('\n');
}
