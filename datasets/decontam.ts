import path from 'node:path';
import type pg from 'pg';
import {
  EvalOverlapIndex,
  evalIndexFingerprint,
  type EvalIndexSource,
  evalQuestionFromRecord,
  type OverlapSettings,
} from '../core/decontam.js';
import { formatRejection, locate } from '../core/formats/rejection.js';
import {
  type CandidateSources,
  candidatePage,
  type DecontamReport,
  dropCandidates,
  ensureDecontamIndex,
  insertChecks,
  stageUncheckedCandidates,
  toolsetNames,
  writeVersionReport,
} from '../db/queries/decontam.js';
import { withClient } from '../db/tx.js';
import { readRecords } from './read-records.js';
import { fileSha256 } from './staging.js';

/**
 * Decontamination over the store: reads the evaluation sets' question files into an index once, then checks samples
 * (a version's members, or everything an assembly may draw from) page by page against it, storing one check per
 * (index, sample). Memory is the index plus one page, whatever the size of the versions.
 */

/** An evaluation file that cannot be read as BFCL questions: which file, line and field, and why. */
export class EvalSetFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EvalSetFileError';
  }
}

/** Evaluation sets as the loop config names them (only the question files matter here). */
export interface EvalSetFiles {
  name: string;
  files: readonly { questions: string }[];
}

export interface BuiltEvalIndex {
  index: EvalOverlapIndex;
  fingerprint: string;
  sources: EvalIndexSource[];
}

/**
 * Reads every question file of `sets` into one index. `resolvePath` turns a configured path into one to open (the
 * worker resolves loop-config paths against the project root). A file that cannot be opened, a line that is not
 * JSON or a record that is not a question fails the whole build, naming the set, file, line and field: checking
 * against part of a set would report a version clean that is not.
 */
export async function buildEvalIndex(input: {
  sets: readonly EvalSetFiles[];
  settings: OverlapSettings;
  resolvePath?: (configured: string) => string;
}): Promise<BuiltEvalIndex> {
  if (input.sets.length === 0)
    throw new EvalSetFileError(
      'no evaluation sets to check against (name question files, or configure evaluation.sets)',
    );
  const resolve = input.resolvePath ?? ((p: string) => path.resolve(p));
  const index = new EvalOverlapIndex(input.settings);
  const sources: EvalIndexSource[] = [];
  for (const set of input.sets) {
    for (const { questions: configured } of set.files) {
      const file = resolve(configured);
      let sha256: string;
      try {
        sha256 = await fileSha256(file);
      } catch (err) {
        throw new EvalSetFileError(
          `evaluation set ${set.name}: cannot read ${configured} (${file}): ${(err as Error).message}`,
        );
      }
      let count = 0;
      for await (const item of readRecords(file)) {
        if (item.kind === 'rejection')
          throw new EvalSetFileError(`evaluation set ${set.name}: ${formatRejection(item.rejection)}`);
        const question = evalQuestionFromRecord(item.value, set.name);
        if (!question.ok)
          throw new EvalSetFileError(
            `evaluation set ${set.name}: ${formatRejection(locate(question.rejection, { file, line: item.line }))}`,
          );
        index.add(question.value);
        count++;
      }
      sources.push({ set: set.name, file: configured, sha256, questions: count });
    }
  }
  return { index, fingerprint: evalIndexFingerprint(input.settings, sources), sources };
}

/** Records the index (once per fingerprint) and returns its id. */
export const storeEvalIndex = (pool: pg.Pool, built: BuiltEvalIndex) =>
  ensureDecontamIndex(pool, {
    fingerprint: built.fingerprint,
    ngram: built.index.settings.ngram,
    minQuestionTokens: built.index.settings.minQuestionTokens,
    sources: built.sources,
    stats: built.index.stats,
  });

/** How far a check run is: candidates checked so far of those that needed it. */
export interface CheckProgress {
  checked: number;
  of: number;
}

/** Tool sets remembered per run: they repeat across samples; past this many the memo starts over (bounded memory). */
const TOOLSET_MEMO_LIMIT = 100_000;

/**
 * Checks every sample of `sources` not yet checked against the index, in pages of `pageSize` by seq, storing each
 * page's checks before the next is read. Idempotent and resumable: a rerun (or a retried activity) checks only what is
 * still unchecked. Returns how many samples it checked and how many of those overlap (either kind).
 */
export async function checkCandidates(
  pool: pg.Pool,
  input: {
    built: BuiltEvalIndex;
    indexId: number;
    sources: CandidateSources;
    pageSize?: number;
    onProgress?: (progress: CheckProgress) => void;
  },
): Promise<{ checked: number; overlapping: number }> {
  const pageSize = input.pageSize ?? 2_000;
  const { index } = input.built;
  const sharedByToolset = new Map<string, string[]>();
  let checked = 0;
  let overlapping = 0;
  // The candidates list is a temporary table of this one connection; the checks are written through the pool, so
  // writing one page overlaps reading the next.
  return withClient(pool, async (client) => {
    try {
      const of = await stageUncheckedCandidates(client, { indexId: input.indexId, sources: input.sources });
      input.onProgress?.({ checked, of });
      let after = 0;
      let pendingWrite: Promise<void> = Promise.resolve();
      for (;;) {
        const page = await candidatePage(client, { after, limit: pageSize });
        if (page.length === 0) break;
        const unknown = [...new Set(page.map((c) => c.toolsetId))].filter((id) => !sharedByToolset.has(id));
        if (sharedByToolset.size + unknown.length > TOOLSET_MEMO_LIMIT) sharedByToolset.clear();
        for (const [id, names] of await toolsetNames(pool, unknown))
          sharedByToolset.set(id, index.sharedToolNames(names));
        const checks = page.map((candidate) => ({
          seq: candidate.seq,
          toolNames: sharedByToolset.get(candidate.toolsetId) ?? [],
          questions: index.sharedQuestions(candidate.userTexts),
        }));
        overlapping += checks.filter((c) => c.toolNames.length > 0 || c.questions.length > 0).length;
        await pendingWrite;
        const write = insertChecks(pool, input.indexId, checks).then(() => {
          checked += checks.length;
          input.onProgress?.({ checked, of });
        });
        // Marked handled now, awaited before the next write or at the end: a failed write that lands while the next
        // page is read is thrown there, not reported as an unhandled rejection that ends the process.
        write.catch(() => {});
        pendingWrite = write;
        after = page[page.length - 1]!.seq;
      }
      await pendingWrite;
      return { checked, overlapping };
    } finally {
      // Session-local and truncated by the next run anyway: failing to drop it must not hide the run's own error.
      await dropCandidates(client).catch(() => {});
    }
  });
}

/**
 * A version's overlap with the evaluation sets: builds the index, checks the members not yet checked against it, and
 * stores and returns the version's report. Rerunning it checks nothing twice and rewrites the same report.
 */
export async function decontaminateVersion(
  pool: pg.Pool,
  input: {
    versionId: number;
    sets: readonly EvalSetFiles[];
    settings: OverlapSettings;
    resolvePath?: (configured: string) => string;
    pageSize?: number;
    onProgress?: (progress: CheckProgress) => void;
  },
): Promise<{ indexId: number; built: BuiltEvalIndex; checkedNow: number; report: DecontamReport }> {
  const built = await buildEvalIndex(input);
  const indexId = await storeEvalIndex(pool, built);
  const { checked } = await checkCandidates(pool, {
    built,
    indexId,
    sources: { versionIds: [input.versionId] },
    ...(input.pageSize ? { pageSize: input.pageSize } : {}),
    ...(input.onProgress ? { onProgress: input.onProgress } : {}),
  });
  const { report } = await writeVersionReport(pool, { versionId: input.versionId, indexId });
  return { indexId, built, checkedNow: checked, report };
}
