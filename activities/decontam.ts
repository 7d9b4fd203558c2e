import { ApplicationFailure } from '@temporalio/activity';
import {
  CheckAssemblyCandidatesInput,
  DecontaminateVersionInput,
  type DecontamVersionSummary,
} from '../core/decontam.js';
import { ErrorType } from '../core/errors.js';
import { parseInput } from '../core/inputs.js';
import {
  buildEvalIndex,
  checkCandidates,
  type CheckProgress,
  decontaminateVersion,
  EvalSetFileError,
  storeEvalIndex,
} from '../datasets/decontam.js';
import { DatasetVersionError, getVersion } from '../db/queries/versions.js';
import { projectPath } from '../services/paths.js';
import type { ActivityDeps } from './deps.js';
import { keepHeartbeating } from './heartbeat.js';

/** Evaluation files that cannot be read fail the activity once: no retry makes a missing or malformed file readable. */
async function asConfigFailure<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof EvalSetFileError) throw ApplicationFailure.nonRetryable(err.message, ErrorType.ConfigInvalid);
    throw err;
  }
}

/**
 * Decontamination activities (LOOPTOOL-METHOD.md §10.4 item 9). Both check samples against the loop's evaluation sets
 * page by page, storing each check once per (evaluation index, sample), so a retry or a later call continues where
 * the last stopped and never checks a sample twice; both heartbeat their progress every second. Relative eval-set
 * paths resolve against the project root, as the evaluation's do.
 */
export function createDecontamActivities(deps: ActivityDeps) {
  return {
    /** A built version's overlap: checks its members and stores its report (null when there are no eval sets). */
    async decontaminateVersion(rawInput: DecontaminateVersionInput): Promise<DecontamVersionSummary | null> {
      const input = parseInput(DecontaminateVersionInput, rawInput, 'decontaminateVersion');
      if (input.evalSets.length === 0) return null;
      await getVersion(deps.pool, input.versionId).catch((err: unknown) => {
        if (err instanceof DatasetVersionError)
          throw ApplicationFailure.nonRetryable(err.message, ErrorType.DataNotFound);
        throw err;
      });
      let progress: CheckProgress = { checked: 0, of: 0 };
      const { indexId, checkedNow, report } = await keepHeartbeating(
        () => progress,
        () =>
          asConfigFailure(() =>
            decontaminateVersion(deps.pool, {
              versionId: input.versionId,
              sets: input.evalSets,
              settings: input.settings,
              resolvePath: (p) => projectPath(p),
              pageSize: input.pageSize,
              onProgress: (p) => (progress = p),
            }),
          ),
      );
      return {
        indexId,
        versionId: input.versionId,
        members: report.members,
        toolNameOverlaps: report.toolNameOverlaps,
        ngramOverlaps: report.ngramOverlaps,
        contaminated: input.settings.toolNames
          ? report.toolNameOverlaps + report.ngramOverlaps - report.bothOverlaps
          : report.ngramOverlaps,
        checkedNow,
      };
    },

    /**
     * Before an assembly with `decontamination.exclude`: checks every sample it may draw from and returns the index id
     * that `contaminatedSampleSql` / `removeContaminatedMembers` (db/queries/decontam.ts) take (null: no eval sets).
     */
    async checkAssemblyCandidates(
      rawInput: CheckAssemblyCandidatesInput,
    ): Promise<{ indexId: number; checked: number; overlapping: number } | null> {
      const input = parseInput(CheckAssemblyCandidatesInput, rawInput, 'checkAssemblyCandidates');
      if (input.evalSets.length === 0) return null;
      const versionIds = await Promise.all(
        input.versionIds.map(async (ref) =>
          typeof ref === 'number'
            ? ref
            : (
                await getVersion(deps.pool, ref).catch((err: unknown) => {
                  if (err instanceof DatasetVersionError)
                    throw ApplicationFailure.nonRetryable(err.message, ErrorType.DataNotFound);
                  throw err;
                })
              ).id,
        ),
      );
      let progress: CheckProgress = { checked: 0, of: 0 };
      return keepHeartbeating(
        () => progress,
        () =>
          asConfigFailure(async () => {
            const built = await buildEvalIndex({
              sets: input.evalSets,
              settings: input.settings,
              resolvePath: (p) => projectPath(p),
            });
            const indexId = await storeEvalIndex(deps.pool, built);
            const result = await checkCandidates(deps.pool, {
              built,
              indexId,
              sources: {
                versionIds,
                ...(input.iteration ? { iterations: [input.iteration] } : {}),
                stagingBatchIds: input.injectBatchIds,
              },
              pageSize: input.pageSize,
              onProgress: (p) => (progress = p),
            });
            return { indexId, ...result };
          }),
      );
    },
  };
}
