import {
  allHandlersFinished,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  ParentClosePolicy,
  patched,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { LoopConfig } from '../core/config.js';
import {
  gpuPoolQueue,
  SEARCH_ATTRIBUTES,
  STAGE_BATCHES_PER_RUN,
  taskQueues,
  type TaskQueues,
  workflowIds,
} from '../core/constants.js';
import type { LoopState } from '../core/inputs.js';
import type { CheckpointManifest } from '../core/training.js';
import {
  InjectDataInput,
  type IterationSummary,
  LoopWorkflowInput,
  type ModelTarget,
  parseInput,
  type StageWorkflowInput,
  type VersionRef,
} from '../core/inputs.js';
import { iterationTable, markdownTable } from '../core/iteration-table.js';
import { DEFAULT_BFCL_CATEGORIES, expandBfclCategories } from '../core/stages/bfcl-overall.js';
import {
  injectDataUpdate,
  type LoopStatus,
  pauseSignal,
  pauseUpdate,
  resumeSignal,
  resumeUpdate,
  stagePausedSignal,
  stageWaitingSignal,
  statusQuery,
  stopAfterIterationUpdate,
  type Waiting,
} from '../core/messages.js';
import { ErrorType } from '../core/errors.js';
import { CHECKER_OF_REWARD, type LoopPhase } from '../core/vocabulary.js';
import { type LoopActivities, loopActivities } from './activity-proxies.js';
import { Patience } from './patience.js';
import { stageWorkflow } from './stage.js';

/**
 * Patch (workflow versioning): setup and each iteration's evaluation run their independent activities at once — D_1's
 * overlap report, the held-out slice's scoring and the evaluation sets' — instead of one after another. Histories
 * recorded before it replay the sequential path (test/workflows/loop-replay.test.ts replays two).
 */
const CONCURRENT_SCORING_PATCH = 'concurrent-held-out-scoring';

export interface LoopResult {
  loopName: string;
  iterations: number;
  finalDataset: string;
  baselineAccuracy: number | null;
  history: IterationSummary[];
}

/** A stage child's input without what the loop fills in itself (distributed over the stage variants). */
type StageRequest = StageWorkflowInput extends infer T
  ? T extends StageWorkflowInput
    ? Omit<T, 'loopName' | 'iteration' | 'queues' | 'paused' | 'concurrency' | 'batchesPerRun' | 'timeouts'>
    : never
  : never;

/**
 * The LoopTool loop (`loop/<name>`), one iteration per run (continue-as-new with a small typed state). The body reads
 * as the paper's Algorithm 1; the {@link LoopRun} controller holds the state and answers the loop's messages. Every
 * activity it runs writes idempotently, so a worker crash at any point replays into the same datasets.
 */
export async function loopWorkflow(rawInput: LoopWorkflowInput): Promise<LoopResult> {
  // State and handlers exist before the first await: a loop still in setup (registering, drawing D_1, scoring a base
  // model whose server is down) already answers status, pause, stop and injectData.
  const loop = new LoopRun(parseInput(LoopWorkflowInput, rawInput, 'loopWorkflow'));
  return loop.cleanUpIfCancelled(async () => {
    const dataset = loop.state.dataset ?? (await loop.setup());
    // Algorithm 1, iteration j:
    const policy = await loop.trainAndDeploy(dataset); //   GRPO on D_j → π_j, served (skipped when probing the base model first)
    // Probe, judge and expand only feed D_{j+1}: the last iteration skips them (unless configured).
    if (loop.buildsNextDataset()) await loop.probe(dataset, policy); // GCP: greedy answers to D_j vs the labels
    if (loop.buildsNextDataset()) await loop.judge(); //                JGLV: the judge on each mismatch; labels fixed
    if (loop.buildsNextDataset()) await loop.expand(); //               EDDE: k new samples per verified error
    const next = await loop.assemble(dataset); //            Eq. 5: D_{j+1} within the budget (none after the last round)
    await loop.evaluate(policy); //                          π_j on the held-out sets and the seed pool's held-out slice
    return loop.finish(next);
  });
}

/**
 * One run of a loop: its state, its message handlers (registered in the constructor, before any await), the pause
 * gate, and one method per step of Algorithm 1.
 */
class LoopRun {
  readonly state: LoopState;
  private readonly config: LoopConfig;
  private readonly queues: TaskQueues;
  private readonly act: LoopActivities;
  private phase: LoopPhase;
  private readonly progress: LoopStatus['progress'] = {};
  private readonly summary: IterationSummary;
  /** π_j once trained: the next iteration warm-starts from it. */
  private trained: CheckpointManifest | undefined;
  /** The stage child that runs now, so a pause reaches its batches too. */
  private runningChild: string | undefined;
  /** The loop's own activity calls, waiting out outages (see workflows/patience.ts). */
  private readonly patience: Patience;
  /** What the running stage child's batches wait for, as it last signalled. */
  private childWaiting: Waiting[] = [];
  /** The reason last written to the LoopWaitingFor search attribute, so it is upserted only when it changes. */
  private shownWaiting: string | null = null;

  constructor(private readonly input: ReturnType<typeof LoopWorkflowInput.parse>) {
    this.config = input.config;
    this.queues = input.queues ?? taskQueues();
    const { pool } = this.config.training;
    this.act = loopActivities(
      this.queues,
      this.config.timeouts,
      pool ? gpuPoolQueue(this.queues, pool) : this.queues.gpu,
    );
    this.state = input.state ?? {
      iteration: 1,
      checkpoint: null,
      paused: false,
      stopAfterIteration: false,
      pendingInjections: [],
      injectionKeys: [],
      history: [],
    };
    const { resume } = input;
    if (resume) {
      // What the ended run had been told after it started is taken over; nothing else of it is needed.
      Object.assign(this.state, {
        pendingInjections: resume.pendingInjections,
        injectionKeys: resume.injectionKeys,
        paused: resume.paused,
        stopAfterIteration: resume.stopAfterIteration,
      });
      log.info('resuming the loop', { fromRunId: resume.fromRunId, cause: resume.cause });
    }
    // A continued run's next step is training; the first run starts with its setup.
    this.phase = input.state ? 'train' : 'setup';
    this.patience = new Patience(this.config.timeouts.outageBackoffMaxSeconds, () => this.waitingChanged());
    this.summary = {
      iteration: this.state.iteration,
      dataset: this.state.dataset?.ref ?? '',
      countsByRole: this.state.dataset?.countsByRole ?? {},
    };
    this.registerHandlers();
    upsertSearchAttributes([
      { key: SEARCH_ATTRIBUTES.loopName, value: input.loopName },
      { key: SEARCH_ATTRIBUTES.loopIteration, value: this.state.iteration },
      { key: SEARCH_ATTRIBUTES.loopStage, value: this.phase },
      { key: SEARCH_ATTRIBUTES.loopPaused, value: this.state.paused },
    ]);
    upsertMemo({
      configHash: input.configHash,
      dataset: this.state.dataset?.ref ?? null,
      checkpoint: this.state.checkpoint?.path ?? null,
    });
    this.refreshDetails();
  }

  private get loopName(): string {
    return this.input.loopName;
  }

  private get iteration(): number {
    return this.state.iteration;
  }

  status(): LoopStatus {
    return {
      loopName: this.loopName,
      iteration: this.iteration,
      iterations: this.config.iterations,
      stage: this.phase,
      paused: this.state.paused,
      stopAfterIteration: this.state.stopAfterIteration,
      progress: this.progress,
      ...(this.state.baselineAccuracy !== undefined ? { baselineAccuracy: this.state.baselineAccuracy } : {}),
      ...(this.state.baselineHeldOutAccuracy !== undefined
        ? { baselineHeldOutAccuracy: this.state.baselineHeldOutAccuracy }
        : {}),
      history: this.state.history,
      pendingInjections: this.state.pendingInjections,
      waiting: this.waiting(),
    };
  }

  /** Every outage the loop waits out now (its own calls and its stage child's batches), oldest first. */
  private waiting(): Waiting[] {
    return [...this.patience.list(), ...this.childWaiting].sort((a, b) => a.since.localeCompare(b.since));
  }

  /** Shows a change in what the loop waits for: search attributes (for filters) and the UI's current details. */
  private waitingChanged(): void {
    const first = this.waiting()[0];
    const reason = first ? `${first.what}: ${first.reason}`.slice(0, 1000) : null;
    if (reason !== this.shownWaiting) {
      this.shownWaiting = reason;
      upsertSearchAttributes([
        { key: SEARCH_ATTRIBUTES.loopWaitingFor, value: reason },
        { key: SEARCH_ATTRIBUTES.loopWaitingSince, value: first ? new Date(first.since) : null },
      ]);
    }
    this.refreshDetails();
  }

  /** One activity call of the loop, outliving outages: what it is for names it in `loop status` while it waits. */
  private patiently<T>(what: string, call: () => Promise<T>): Promise<T> {
    return this.patience.call(what, call);
  }

  private registerHandlers(): void {
    setHandler(statusQuery, () => this.status());
    setHandler(pauseUpdate, async () => {
      await this.setPaused(true);
      return this.status();
    });
    setHandler(
      resumeUpdate,
      async () => {
        await this.setPaused(false);
        return this.status();
      },
      {
        validator: () => {
          if (!this.state.paused)
            throw ApplicationFailure.create({ message: `loop ${this.loopName} is not paused`, nonRetryable: true });
        },
      },
    );
    setHandler(pauseSignal, () => void this.setPaused(true));
    setHandler(resumeSignal, () => void this.setPaused(false));
    setHandler(
      injectDataUpdate,
      (injection) => {
        if (!this.state.injectionKeys.includes(injection.idempotencyKey)) {
          this.state.injectionKeys.push(injection.idempotencyKey);
          this.state.pendingInjections.push(injection.stagingBatchId);
        }
        this.refreshDetails();
        return this.status();
      },
      // Rejected before anything reaches history; an update handler's own throw would leave the workflow retrying.
      {
        validator: (injection) => {
          parseInput(InjectDataInput, injection, 'injectData');
          // No D_{j+1} is assembled after the last iteration: data injected now would be accepted and never used.
          const last = this.iteration >= this.config.iterations || this.state.stopAfterIteration;
          if (last && !this.state.injectionKeys.includes(injection.idempotencyKey))
            throw ApplicationFailure.create({
              message:
                `loop ${this.loopName} is in its last iteration (${this.iteration} of ${this.config.iterations}` +
                `${this.state.stopAfterIteration ? ', stopping after it' : ''}): no dataset is assembled after it, so ` +
                'injected data would never be used; inject into a loop with iterations to go',
              type: ErrorType.ConfigInvalid,
              nonRetryable: true,
            });
        },
      },
    );
    setHandler(stageWaitingSignal, (waiting) => {
      this.childWaiting = waiting;
      this.waitingChanged();
    });
    setHandler(stopAfterIterationUpdate, () => {
      this.state.stopAfterIteration = true;
      this.refreshDetails();
      return this.status();
    });
  }

  private async setPaused(paused: boolean): Promise<void> {
    if (this.state.paused === paused) return;
    this.state.paused = paused;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.loopPaused, value: paused }]);
    this.refreshDetails();
    if (this.runningChild)
      await getExternalWorkflowHandle(this.runningChild)
        .signal(stagePausedSignal, paused)
        .catch(() => {});
  }

  /** The UI's "current details": where the loop is and what each iteration did (the CLI shows the same table). */
  private refreshDetails(): void {
    const status = this.status();
    const table = iterationTable(status);
    const lines = [
      `**${status.loopName}**: iteration ${status.iteration}/${status.iterations}, stage **${status.stage}**${status.paused ? ' (**paused**)' : ''}${status.stopAfterIteration ? ', stopping after this iteration' : ''}`,
      '',
      markdownTable(table.headers, table.rows),
    ];
    if (status.pendingInjections.length > 0)
      lines.push('', `Injections waiting for the next dataset: ${status.pendingInjections.length}`);
    for (const waiting of status.waiting)
      lines.push(
        '',
        `**Waiting** since ${waiting.since} (${waiting.rounds} rounds): ${waiting.what}: ${waiting.reason}`,
      );
    setCurrentDetails(lines.join('\n'));
  }

  /** The pause gate: nothing new starts while paused; whatever was in flight has finished by the time we get here. */
  private async enter(next: LoopPhase): Promise<void> {
    await condition(() => !this.state.paused);
    this.phase = next;
    upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.loopStage, value: next }]);
    this.refreshDetails();
  }

  private model(role: 'policy' | 'judge' | 'generator'): ModelTarget {
    return this.config.models[role];
  }

  /** The first run: record the loop, draw D_1 from the seed pool, and score the base model (iteration 0). */
  async setup(): Promise<VersionRef> {
    const { config } = this;
    await this.patiently('register the loop', () =>
      this.act.db.registerLoop({
        loopName: this.loopName,
        workflowId: workflowIds.loop(this.loopName),
        config: config as unknown as Record<string, unknown>,
        configHash: this.input.configHash,
      }),
    );
    const exclusion = await this.checkForExclusion('the seed pool', { versionIds: [config.data.seedDataset] });
    const initial = await this.patiently('draw D_1', () =>
      this.act.db.createInitialVersion({
        loopName: this.loopName,
        seedDataset: config.data.seedDataset,
        ...(config.data.initialSize ? { size: config.data.initialSize } : {}),
        seed: config.seed,
        heldOutFraction: config.data.heldOutFraction,
        ...(exclusion ? { exclusion } : {}),
        configHash: this.input.configHash,
      }),
    );
    const dataset = { versionId: initial.versionId, ref: initial.ref, countsByRole: initial.countsByRole };
    const record = () => {
      Object.assign(this.state, {
        dataset,
        seedVersionId: initial.seedVersionId,
        budget: config.data.budget ?? initial.memberCount,
      });
      Object.assign(this.summary, { dataset: dataset.ref, countsByRole: dataset.countsByRole });
      upsertMemo({ dataset: dataset.ref });
    };
    if (patched(CONCURRENT_SCORING_PATCH)) {
      // D_1's overlap report and the base model's two scorings need nothing of each other: one round, not three.
      record();
      const policy = this.model('policy');
      const [, heldOut, accuracy] = await Promise.all([
        this.reportOverlap(initial.versionId, 'D_1'),
        config.data.heldOutFraction > 0 ? this.scoreHeldOutSlice(0, policy) : undefined,
        this.hasHeldOut() ? this.scoreOnHeldOut(0, policy) : undefined,
      ]);
      if (heldOut !== undefined) this.state.baselineHeldOutAccuracy = heldOut;
      if (accuracy !== undefined) this.state.baselineAccuracy = accuracy;
    } else {
      // Histories of loops started before the patch: one after another.
      await this.reportOverlap(initial.versionId, 'D_1');
      record();
      if (config.data.heldOutFraction > 0)
        this.state.baselineHeldOutAccuracy = await this.scoreHeldOutSlice(0, this.model('policy'));
      if (this.hasHeldOut()) {
        this.state.baselineAccuracy = await this.scoreOnHeldOut(0, this.model('policy'));
      }
    }
    this.refreshDetails();
    return dataset;
  }

  /** Train π_j on D_j from π_{j-1} and serve it; the base model serves iteration 1 when the loop probes first. */
  async trainAndDeploy(dataset: VersionRef): Promise<ModelTarget> {
    const j = this.iteration;
    let policy = this.model('policy');
    if (!(this.config.probeFirst && j === 1)) {
      await this.enter('train');
      const { training } = this.config;
      // A resumed run whose earlier run had trained π_j keeps it: the checkpoint is stored, its job succeeded.
      const resumedTrained = this.input.resume?.trained;
      const trained = resumedTrained
        ? { checkpoint: resumedTrained }
        : await this.patiently(`train π_${j}`, () =>
            this.act.summarized('train', `train π_${j} on ${dataset.ref}`).trainIteration({
              loopName: this.loopName,
              iteration: j,
              versionId: dataset.versionId,
              baseModel: training.baseModel ?? this.config.models.policy.model,
              baseCheckpoint: training.warmStart ? this.state.checkpoint : null,
              training,
              reward: this.config.reward,
              seed: this.config.seed,
              jobAttempt: this.input.resume?.trainingJobAttempt ?? 1,
            }),
          );
      const { checkpoint } = trained;
      this.trained = checkpoint;
      Object.assign(this.summary, {
        checkpoint: checkpoint.path,
        training: { kind: checkpoint.kind, steps: checkpoint.steps, metrics: checkpoint.metrics },
      });
      upsertMemo({ checkpoint: checkpoint.path });
      await this.enter('deploy');
      const deployed = await this.patiently(`deploy π_${j}`, () =>
        this.act.summarized('deploy', `deploy π_${j}`).deployCheckpoint({
          loopName: this.loopName,
          iteration: j,
          checkpoint,
          policyBaseUrls: policy.baseUrls,
          deploy: this.config.deploy,
        }),
      );
      this.summary.servedModel = deployed.model;
      policy = { ...policy, model: deployed.model };
    } else {
      this.summary.checkpoint = this.state.checkpoint?.path ?? null;
    }
    return policy;
  }

  probe(dataset: VersionRef, policy: ModelTarget): Promise<void> {
    const { probe } = this.config;
    const checker = { mode: CHECKER_OF_REWARD[this.config.reward] };
    return this.runStage({
      stage: 'probe',
      versionId: dataset.versionId,
      batchSize: probe.batchSize,
      settings: {
        versionId: dataset.versionId,
        policy,
        checker,
        maxTokens: probe.maxTokens,
        maxPromptTokens: this.config.training.grpo.maxPromptTokens,
        contextTokens: probe.contextTokens ?? null,
        conversationsPerRequest: probe.conversationsPerRequest,
      },
    });
  }

  judge(): Promise<void> {
    const { judge } = this.config;
    const settings = {
      judge: this.model('judge'),
      seed: this.config.seed,
      votes: judge.votes,
      voteTemperature: judge.voteTemperature,
      parseRetries: judge.parseRetries,
      consensusOver: judge.consensusOver,
    };
    return this.runStage({ stage: 'judge', batchSize: judge.batchSize, settings });
  }

  expand(): Promise<void> {
    const { expand } = this.config;
    return this.runStage({
      stage: 'expand',
      batchSize: expand.batchSize,
      settings: {
        generator: this.model('generator'),
        ...(expand.validate ? { validator: this.model('judge') } : {}),
        seed: this.config.seed,
        k: expand.k,
        maxAttempts: expand.maxAttempts,
        temperature: expand.temperature,
        topP: expand.topP,
        topK: expand.topK,
        presencePenalty: expand.presencePenalty,
        maxTokens: expand.maxTokens,
        generatorPromptVersion: expand.generatorPromptVersion,
        validatorPromptVersion: expand.validatorPromptVersion,
      },
    });
  }

  /** Whether this iteration assembles D_{j+1}: not the last one, nor one a stop was asked for. */
  private isLastIteration(): boolean {
    return this.iteration >= this.config.iterations || this.state.stopAfterIteration;
  }

  /**
   * Whether this iteration probes, judges and expands: their results only feed D_{j+1}, so the last iteration skips
   * them unless `probeLastIteration` asks to keep them. Asked before each of the three stages, so a stop that arrives
   * during probing skips judging and expanding.
   */
  buildsNextDataset(): boolean {
    return !this.isLastIteration() || this.config.probeLastIteration;
  }

  /** D_{j+1} by Eq. 5, with the injected batches merged once; none after the last iteration. */
  async assemble(dataset: VersionRef): Promise<VersionRef | undefined> {
    const j = this.iteration;
    if (this.isLastIteration()) return undefined;
    await this.enter('assemble');
    const injections = [...this.state.pendingInjections];
    const budget = this.state.budget!;
    const exclusion = await this.checkForExclusion(`D_${j + 1}'s candidates`, {
      versionIds: [this.state.seedVersionId!, dataset.versionId],
      iteration: { loopName: this.loopName, iteration: j },
      injectBatchIds: injections,
    });
    const assembled = await this.patiently(`assemble D_${j + 1}`, () =>
      this.act.summarized('db', `assemble D_${j + 1} (Eq. 5)`).assembleNextVersion({
        loopName: this.loopName,
        iteration: j,
        currentVersionId: dataset.versionId,
        seedVersionId: this.state.seedVersionId!,
        budget,
        shares: {
          seedNewFraction: this.config.data.seedNewFraction,
          seedNewDecay: this.config.data.seedNewDecay,
          errorSeedMaxShare: this.config.data.errorSeedMaxShare,
          highPplMinShare: this.config.data.highPplMinShare,
        },
        heldOutFraction: this.config.data.heldOutFraction,
        ...(exclusion ? { exclusion } : {}),
        seed: this.config.seed,
        configHash: this.input.configHash,
        injectBatchIds: injections,
      }),
    );
    if (assembled.skippedInjections.length > 0)
      log.warn('injections skipped (not ready or merged elsewhere)', { batches: assembled.skippedInjections });
    this.state.pendingInjections = this.state.pendingInjections.filter((id) => !injections.includes(id));
    this.summary.nextDataset = assembled.ref;
    await this.reportOverlap(assembled.versionId, `D_${j + 1}`);
    return { versionId: assembled.versionId, ref: assembled.ref, countsByRole: assembled.countsByRole };
  }

  async evaluate(policy: ModelTarget): Promise<void> {
    const slice = this.config.data.heldOutFraction > 0;
    if (!slice && !this.hasHeldOut()) return;
    if (patched(CONCURRENT_SCORING_PATCH)) {
      // The held-out slice and the evaluation sets score the same served policy independently: at once.
      await this.enter('evaluate');
      const [heldOut, accuracy] = await Promise.all([
        slice ? this.scoreHeldOutSlice(this.iteration, policy) : undefined,
        this.hasHeldOut() ? this.scoreOnHeldOut(this.iteration, policy) : undefined,
      ]);
      if (heldOut !== undefined) this.summary.heldOutAccuracy = heldOut;
      if (accuracy !== undefined) this.recordAccuracy(accuracy);
      return;
    }
    // Histories of loops started before the patch: one after another.
    if (slice) {
      await this.enter('evaluate');
      this.summary.heldOutAccuracy = await this.scoreHeldOutSlice(this.iteration, policy);
    }
    if (!this.hasHeldOut()) return;
    await this.enter('evaluate');
    this.recordAccuracy(await this.scoreOnHeldOut(this.iteration, policy));
  }

  private recordAccuracy(accuracy: number | null): void {
    this.summary.accuracy = accuracy;
    if (this.heldOutGroups) this.summary.evaluation = this.heldOutGroups;
    if (accuracy !== null) upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.loopAccuracy, value: accuracy }]);
  }

  /** Ends the loop after the last (or a stopped) iteration; otherwise continues as new with D_{j+1}. */
  async finish(next: VersionRef | undefined): Promise<LoopResult> {
    this.state.history.push(this.summary);
    await condition(allHandlersFinished);
    if (!next || this.state.stopAfterIteration) {
      this.phase = 'done';
      upsertSearchAttributes([{ key: SEARCH_ATTRIBUTES.loopStage, value: 'done' }]);
      this.refreshDetails();
      return {
        loopName: this.loopName,
        iterations: this.iteration,
        finalDataset: next?.ref ?? this.state.dataset!.ref,
        baselineAccuracy: this.state.baselineAccuracy ?? null,
        history: this.state.history,
      };
    }
    // A resumed run's resume record is about this iteration only.
    const { resume: _resumed, ...input } = this.input;
    return continueAsNew<typeof loopWorkflow>({
      ...input,
      state: {
        ...this.state,
        iteration: this.iteration + 1,
        dataset: next,
        checkpoint: this.trained ?? this.state.checkpoint,
      },
    });
  }

  /**
   * Runs the loop's body; when the loop is cancelled, cleans up in a non-cancellable scope before the cancellation
   * closes it: the training job of this iteration is cancelled on its backend even if no worker was running the
   * training activity at that moment (`trainIteration` cancels it itself when it can; both are idempotent).
   */
  async cleanUpIfCancelled<T>(body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (err) {
      if (isCancellation(err) && this.phase === 'train') {
        await CancellationScope.nonCancellable(() =>
          this.act.cleanup.cancelTrainingJob({
            loopName: this.loopName,
            iteration: this.iteration,
            training: this.config.training,
          }),
        );
      }
      throw err;
    }
  }

  /**
   * Runs one batched stage (behind the pause gate) as the child workflow `loop/<name>/iter-<j>/<stage>`, and records
   * what it counted in the iteration's summary.
   */
  private async runStage(child: StageRequest): Promise<void> {
    await this.enter(child.stage);
    const workflowId = workflowIds.stage(this.loopName, this.iteration, child.stage);
    const pausedAtStart = this.state.paused;
    try {
      const handle = await startChild(stageWorkflow, {
        workflowId,
        taskQueue: this.queues.control,
        parentClosePolicy: ParentClosePolicy.TERMINATE,
        args: [
          {
            ...child,
            loopName: this.loopName,
            iteration: this.iteration,
            queues: this.queues,
            paused: pausedAtStart,
            concurrency: this.config.concurrency.batches,
            batchesPerRun: STAGE_BATCHES_PER_RUN,
            timeouts: this.config.timeouts,
          } as StageWorkflowInput,
        ],
      });
      // From here on a pause or resume is forwarded to the child; one that came while it was being started is
      // forwarded now (a signal to a child that does not exist yet would be lost).
      this.runningChild = workflowId;
      if (this.state.paused !== pausedAtStart) await handle.signal(stagePausedSignal, this.state.paused);
      const counts = await handle.result();
      this.progress[child.stage] = { done: 1, total: 1, counts };
      this.summary[child.stage] = counts;
    } finally {
      this.runningChild = undefined;
      if (this.childWaiting.length > 0) {
        this.childWaiting = [];
        this.waitingChanged();
      }
    }
  }

  /**
   * With `decontamination.exclude` and evaluation sets: checks everything the next version may draw from against the
   * evaluation sets (stored per sample, once), and returns what the assembly needs to leave the overlapping ones out.
   */
  private async checkForExclusion(
    what: string,
    sources: {
      versionIds: (number | string)[];
      iteration?: { loopName: string; iteration: number };
      injectBatchIds?: string[];
    },
  ): Promise<{ indexId: number; toolNames: boolean } | undefined> {
    const { decontamination, evaluation } = this.config;
    if (!decontamination.exclude || evaluation.sets.length === 0) return undefined;
    const checked = await this.patiently(`check ${what} against the evaluation sets`, () =>
      this.act
        .summarized('decontam', `check ${what} against the evaluation sets`)
        .checkAssemblyCandidates({ evalSets: evaluation.sets, settings: decontamination, ...sources }),
    );
    return checked ? { indexId: checked.indexId, toolNames: decontamination.toolNames } : undefined;
  }

  /** Every version the loop builds is checked for overlap with the evaluation sets (`looptool data decontam`, report). */
  private async reportOverlap(versionId: number, what: string): Promise<void> {
    const { decontamination, evaluation } = this.config;
    if (evaluation.sets.length === 0) return;
    await this.patiently(`check ${what} against the evaluation sets`, () =>
      this.act
        .summarized('decontam', `check ${what} against the evaluation sets`)
        .decontaminateVersion({ evalSets: evaluation.sets, settings: decontamination, versionId }),
    );
  }

  /** Scores a policy on the seed pool's held-out slice (data.heldOutFraction): training distribution, never trained on. */
  private async scoreHeldOutSlice(iteration: number, policy: ModelTarget): Promise<number | null> {
    const who = iteration === 0 ? 'the base model' : `π_${iteration}`;
    const score = await this.patiently(`score ${who} on the held-out slice`, () =>
      this.act.summarized('llm', `score ${who} on the seed pool's held-out slice`).scoreHeldOut({
        loopName: this.loopName,
        iteration,
        seedVersionId: this.state.seedVersionId!,
        seed: this.config.seed,
        heldOutFraction: this.config.data.heldOutFraction,
        policy,
        checker: { mode: CHECKER_OF_REWARD[this.config.reward] },
        maxTokens: this.config.probe.maxTokens,
      }),
    );
    return score.accuracy;
  }

  /** Whether the loop scores policies on held-out data: sets for the builtin backend, BFCL's suite for bfcl-eval. */
  private hasHeldOut(): boolean {
    const { evaluation } = this.config;
    return evaluation.backend === 'bfcl-eval' || evaluation.sets.length > 0;
  }

  /** BFCL v3's groups (Non-Live, Live, Multi-Turn) of the last held-out scoring, for the iteration's summary. */
  private heldOutGroups: Record<string, number> | undefined;

  /**
   * Scores a policy on the held-out data; returns BFCL v3's overall accuracy (the UI's LoopAccuracy): with the builtin
   * backend the first set's, each file one activity; with bfcl-eval one harness activity over the configured
   * categories (groups expanded here, so the activity's input names exactly what runs).
   */
  private async scoreOnHeldOut(iteration: number, policy: ModelTarget): Promise<number | null> {
    const who = iteration === 0 ? 'the base model' : `π_${iteration}`;
    const { evaluation, probe } = this.config;
    if (evaluation.backend === 'bfcl-eval') {
      const harness = this.act.summarized('harness', `BFCL harness on ${who}`);
      const result = await this.patiently(`evaluate ${who} with the BFCL harness`, () =>
        harness.evaluateWithHarness({
          loopName: this.loopName,
          iteration,
          policy,
          categories: expandBfclCategories(evaluation.categories ?? DEFAULT_BFCL_CATEGORIES),
          ...(evaluation.maxPerCategory ? { maxPerCategory: evaluation.maxPerCategory } : {}),
          maxTokens: probe.maxTokens,
        }),
      );
      this.heldOutGroups = result.groups;
      return result.overall;
    }
    let overall: number | null = null;
    let groups: Record<string, number> | undefined;
    for (const set of evaluation.sets) {
      const evaluate = (file: (typeof set.files)[number]) => {
        const name = file.questions.split('/').pop();
        const llm = this.act.summarized('llm', `evaluate ${who} on ${name}`);
        const { maxTokens } = probe;
        return this.patiently(`evaluate ${who} on ${name}`, () =>
          llm.evaluateFile({
            loopName: this.loopName,
            iteration,
            evalSet: set.name,
            file,
            policy,
            maxTokens,
            ...(evaluation.maxPerCategory ? { maxPerCategory: evaluation.maxPerCategory } : {}),
          }),
        );
      };
      await Promise.all(set.files.map(evaluate));
      const summary = await this.patiently(`summarize ${set.name}`, () =>
        this.act.db.summarizeEvaluation({ loopName: this.loopName, iteration, evalSet: set.name }),
      );
      overall ??= summary.overall;
      groups ??= summary.groups;
    }
    this.heldOutGroups = groups;
    return overall;
  }
}
