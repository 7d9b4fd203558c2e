import { randomUUID } from 'node:crypto';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import type pg from 'pg';
import {
  bfclAnswerFromRecord,
  bfclQuestionFromRecord,
  bfclToSample,
  type BfclAnswer,
  type Converted,
  type LocatedRejection,
  locate,
  loopToolToSample,
  shareGptToSamples,
} from '../core/formats/index.js';
import { stagingBatchId } from '../core/inputs.js';
import type { JsonValue } from '../core/json.js';
import type { Sample } from '../core/schemas/sample.js';
import type { ImportFormat, SplitMode, StagingPurpose } from '../core/vocabulary.js';
import { writeImportPage } from '../db/queries/import-batches.js';
import type { StoredSample } from '../db/queries/samples.js';
import { nameProblem } from '../core/names.js';
import {
  abandonStagingBatch,
  claimStagingBatch,
  consumeStagingBatch,
  markStagingReady,
  reopenStagingBatch,
  type StagingBatch,
} from '../db/queries/staging.js';
import {
  addMembersFromStaging,
  countStagedNotIn,
  createVersion,
  type DatasetVersion,
  findVersionByKey,
  freezeVersion,
  inheritMembers,
  latestVersion,
} from '../db/queries/versions.js';
import { encodeSample } from '../db/sample-codec.js';
import { createOpenAiLineConverter } from './openai-import.js';
import { parseJsonLine, readLines, readRecords } from './read-records.js';
import { expireAbandonedBatches, type ExpiredBatch, thisLoader } from './staging.js';

/** Lines longer than this are rejected unread: LoopTool-23k's longest sample is about 73k characters. */
export const DEFAULT_MAX_LINE_CHARS = 4 * 1024 * 1024;

export interface StageFileInput {
  pool: pg.Pool;
  file: string;
  format: ImportFormat;
  purpose: StagingPurpose;
  /** The dataset (import) or loop (injection) the batch is meant for. */
  target: string;
  /** BFCL possible-answer file for `bfcl` questions; without it every question must be an irrelevance one. */
  answersFile?: string;
  /** How chat records become samples: the last assistant turn (default) or one sample per assistant turn. */
  split?: SplitMode;
  maxLineChars?: number;
  /** Rows per database round trip. @default 2000 */
  batchSize?: number;
  /** Called after every flushed batch, for progress output. */
  onProgress?: (progress: { lines: number; staged: number; rejected: number }) => void;
  /**
   * The batch id, when the caller derives it from the content (injections: datasets/staging.ts injectionBatchId). A
   * batch of that id that is ready or consumed already is returned as `reused`, the file unread. @default a new UUID
   */
  batchId?: string;
  /** `loading` batches idle for longer than this are expired first. @default DEFAULT_STAGING_MAX_IDLE_SECONDS */
  maxIdleSeconds?: number;
}

/** Thrown when an import cannot start or finish (a bad name, a batch another process is loading, one that expired). */
export class StagingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StagingError';
  }
}

export interface StageSummary {
  batchId: string;
  lines: number;
  /** Distinct samples now in the batch. */
  staged: number;
  /** Samples that repeat one staged earlier in the same file. */
  duplicates: number;
  /** Samples that were new to the store (the rest were already there from another import or a loop). */
  newToStore: number;
  rejected: number;
  /** The first rejections, for the person reading the output; all of them are in `staging_rejections`. */
  rejections: LocatedRejection[];
  /** The batch with this content staged earlier (ready or consumed), when `batchId` named one: nothing was read. */
  reused?: StagingBatch;
  /** Abandoned batches of earlier imports that this one expired before it started. */
  expired: ExpiredBatch[];
}

const KEPT_REJECTIONS = 100;

/**
 * Streams a file into a new staging batch: each line is parsed, converted to samples, validated and written in
 * batches (samples content-addressed, so re-importing is cheap and adds nothing); each bad line is recorded with file,
 * line, field and reason, and never stops the good lines. Memory stays flat whatever the file size.
 */
export async function stageFile(input: StageFileInput): Promise<StageSummary> {
  // The target's name is checked before anything is read or stored: a bad one would otherwise be refused by the
  // database only when the version is made, after the whole file was staged.
  const badName = nameProblem(input.purpose === 'import' ? 'dataset' : 'loop', input.target);
  if (badName) throw new StagingError(badName);
  await assertReadableFile(input.file);
  // BFCL answers are read before a batch is opened, so a bad answers file leaves no batch behind.
  const answers = input.format === 'bfcl' && input.answersFile ? await loadBfclAnswers(input.answersFile) : undefined;
  if (answers && answers.rejections.length > 0) {
    throw new Error(
      `the answers file has bad lines:\n${answers.rejections
        .slice(0, 10)
        .map((r) => `  ${r.file}:${r.line}: ${r.field ? `${r.field}: ` : ''}${r.reason}`)
        .join('\n')}`,
    );
  }
  const expired = await expireAbandonedBatches(input.pool, {
    ...(input.maxIdleSeconds !== undefined ? { maxIdleSeconds: input.maxIdleSeconds } : {}),
  });
  const batchId = input.batchId ?? stagingBatchId(input.purpose, randomUUID());
  const loader = thisLoader();
  const claimed = await claimStagingBatch(input.pool, {
    id: batchId,
    purpose: input.purpose,
    target: input.target,
    source: input.file,
    format: input.format,
    loader,
  });
  if (!claimed.created) {
    const existing = claimed.batch;
    if (existing.status === 'ready' || existing.status === 'consumed') {
      return {
        batchId,
        lines: 0,
        staged: existing.imported,
        duplicates: existing.duplicates,
        newToStore: 0,
        rejected: existing.rejected,
        rejections: [],
        reused: existing,
        expired,
      };
    }
    // Loading (its loader alive: the expiry above left it) or expired: a loading batch is another import's to finish.
    if (existing.status === 'loading')
      throw new StagingError(
        `staging batch ${batchId} (the same content) is being loaded by process ${existing.loaderPid ?? '?'} on ${existing.loaderHost ?? 'an unknown host'}; wait for it to finish, or run this again once it is gone`,
      );
    if (
      !(await reopenStagingBatch(input.pool, {
        id: batchId,
        source: input.file,
        loader,
        seenUpdatedToken: existing.updatedToken,
      }))
    )
      throw new StagingError(
        `staging batch ${batchId} was taken over by another import at the same time; run this again`,
      );
  }
  try {
    return await loadBatch(input, batchId, answers?.byId, expired);
  } catch (err) {
    // The batch is this process's and will never be finished: expire it now rather than leave it `loading`.
    await abandonStagingBatch(
      input.pool,
      batchId,
      `import failed: ${err instanceof Error ? err.message : String(err)}`,
    ).catch(() => {});
    throw err;
  }
}

/** Reads the file into the claimed batch and marks it ready. */
async function loadBatch(
  input: StageFileInput,
  batchId: string,
  answers: Map<string, BfclAnswer> | undefined,
  expired: ExpiredBatch[],
): Promise<StageSummary> {
  const convert = converterFor(input.format, { split: input.split ?? 'last', ...(answers ? { answers } : {}) });
  const batchSize = input.batchSize ?? 2000;
  const summary: StageSummary = {
    batchId,
    lines: 0,
    staged: 0,
    duplicates: 0,
    newToStore: 0,
    rejected: 0,
    rejections: [],
    expired,
  };
  let pending: { stored: StoredSample; line: number }[] = [];
  let pendingRejections: LocatedRejection[] = [];
  /**
   * The page being written while the next one is read: the database works on one page while this process parses and
   * hashes the next, instead of each waiting for the other. One page at most is in flight, so memory stays two pages.
   */
  let writing: Promise<void> = Promise.resolve();

  const flush = async () => {
    if (pending.length === 0 && pendingRejections.length === 0) return;
    const rows = pending;
    const rejected = pendingRejections;
    pending = [];
    pendingRejections = [];
    // Pages are written in order: the counts below and the first-line-wins rule depend on it.
    await writing;
    writing = (async () => {
      const written = await writeImportPage(input.pool, {
        batchId,
        samples: rows,
        rejections: rejected.map((r) => ({ line: r.line, field: r.field || null, reason: r.reason })),
      });
      summary.newToStore += written.newToStore;
      summary.staged += written.staged;
      summary.duplicates += rows.length - written.staged;
      input.onProgress?.({ lines: summary.lines, staged: summary.staged, rejected: summary.rejected });
    })();
    // Handled here so that a failed write is not an unhandled rejection while the next page is read; the next flush
    // (or the last) awaits it and throws its error.
    writing.catch(() => {});
  };

  const rejectLine = (rejection: LocatedRejection) => {
    summary.rejected++;
    if (summary.rejections.length < KEPT_REJECTIONS) summary.rejections.push(rejection);
    pendingRejections.push(rejection);
  };

  try {
    for await (const item of readLines(input.file, { maxLineChars: input.maxLineChars ?? DEFAULT_MAX_LINE_CHARS })) {
      summary.lines++;
      if (item.kind === 'rejection') {
        rejectLine(item.rejection);
      } else {
        const converted = convert(item.text);
        if (!converted.ok) {
          rejectLine(locate(converted.rejection, item));
        } else {
          const encoded: StoredSample[] = [];
          let failure: string | undefined;
          for (const sample of converted.value) {
            try {
              encoded.push(encodeSample(sample));
            } catch (err) {
              failure = err instanceof Error ? err.message : String(err);
            }
          }
          if (failure) rejectLine({ file: item.file, line: item.line, field: '', reason: failure });
          else for (const stored of encoded) pending.push({ stored, line: item.line });
        }
      }
      if (pending.length >= batchSize || pendingRejections.length >= batchSize) await flush();
    }
    await flush();
    await writing;
  } catch (err) {
    // The page in flight finishes (or fails) before the batch is given up, so nothing writes to it afterwards.
    await writing.catch(() => {});
    throw err;
  }
  const ready = await markStagingReady(input.pool, batchId, {
    imported: summary.staged,
    duplicates: summary.duplicates,
    rejected: summary.rejected,
  });
  if (!ready)
    throw new StagingError(
      `staging batch ${batchId} was expired while this import ran (another process took it for abandoned); run the import again`,
    );
  return summary;
}

/**
 * Fails before any batch is opened when the file cannot be read (missing, a folder, no permission). Pipes are fine
 * (`<(zcat data.jsonl.gz)`): only stat and access are used, which neither block on nor consume them.
 */
async function assertReadableFile(file: string): Promise<void> {
  try {
    if ((await stat(file)).isDirectory()) throw new StagingError(`${file}: is a folder, not a file`);
    await access(file, constants.R_OK);
  } catch (err) {
    if (err instanceof StagingError) throw err;
    throw new StagingError(`cannot read ${file}: ${(err as Error).message}`);
  }
}

/** A line of the file (JSON text) to its samples, or the rejection of the line (not JSON included). */
type LineConverter = (text: string) => Converted<Sample[]>;

function converterFor(
  format: ImportFormat,
  options: { split: SplitMode; answers?: Map<string, BfclAnswer> },
): LineConverter {
  // OpenAI chat lines repeat a few tool lists, which its converter finds in the text before parsing.
  if (format === 'openai') return createOpenAiLineConverter({ split: options.split });
  const convert = recordConverterFor(format, options);
  return (text) => {
    const record = parseJsonLine(text);
    return record.ok ? convert(record.value) : record;
  };
}

function recordConverterFor(
  format: Exclude<ImportFormat, 'openai'>,
  options: { split: SplitMode; answers?: Map<string, BfclAnswer> },
): (record: JsonValue) => Converted<Sample[]> {
  switch (format) {
    case 'sharegpt':
      return (record) => shareGptToSamples(record, { split: options.split });
    case 'looptool':
      return (record) => {
        const sample = loopToolToSample(record);
        return sample.ok ? { ok: true, value: [sample.value] } : sample;
      };
    case 'bfcl':
      return (record) => {
        const question = bfclQuestionFromRecord(record);
        if (!question.ok) return question;
        const answer = options.answers?.get(question.value.id);
        const sample = bfclToSample({ question: question.value, ...(answer ? { answer } : {}) });
        return sample.ok ? { ok: true, value: [sample.value] } : sample;
      };
  }
}

/**
 * BFCL possible answers by question id. BFCL files are bounded (at most about a thousand entries per category), so
 * holding one category's answers while its questions stream past is fine.
 */
async function loadBfclAnswers(
  file: string,
): Promise<{ byId: Map<string, BfclAnswer>; rejections: LocatedRejection[] }> {
  const byId = new Map<string, BfclAnswer>();
  const rejections: LocatedRejection[] = [];
  for await (const item of readRecords(file, { maxLineChars: DEFAULT_MAX_LINE_CHARS })) {
    if (item.kind === 'rejection') {
      rejections.push(item.rejection);
      continue;
    }
    const answer = bfclAnswerFromRecord(item.value);
    if (answer.ok) byId.set(answer.value.id, answer.value);
    else rejections.push(locate(answer.rejection, item));
  }
  return { byId, rejections };
}

/**
 * Turns a staged import into the dataset's next version: the latest version's members plus the batch's samples (role
 * `seed`), frozen. When the batch adds nothing the dataset lacks, no version is made. Idempotent by batch id: a retry
 * after a crash continues the same version.
 */
export async function versionFromImport(
  pool: pg.Pool,
  input: { dataset: string; batchId: string; note?: string },
): Promise<{ version?: DatasetVersion; added: number }> {
  const idempotencyKey = `staging:${input.batchId}`;
  const existing = await findVersionByKey(pool, idempotencyKey);
  const parentId = existing ? existing.parentId : ((await latestVersion(pool, input.dataset))?.id ?? null);
  const added = await countStagedNotIn(pool, { batchId: input.batchId, versionId: parentId });
  if (!existing && added === 0) return { added: 0 };
  const version =
    existing ??
    (await createVersion(pool, { dataset: input.dataset, idempotencyKey, parentId, note: input.note ?? null }));
  if (version.status === 'open') {
    if (parentId !== null) await inheritMembers(pool, { versionId: version.id, fromVersionId: parentId });
    await addMembersFromStaging(pool, { versionId: version.id, batchId: input.batchId, role: 'seed' });
  }
  const frozen = await freezeVersion(pool, version.id);
  await consumeStagingBatch(pool, input.batchId, frozen.id);
  return { version: frozen, added };
}
