import { setMaxListeners } from 'node:events';
import { Context } from '@temporalio/activity';
import type pg from 'pg';
import type { z } from 'zod';
import type { BatchRef, SeqRange } from '../core/inputs.js';
import { Sample } from '../core/schemas/sample.js';
import type { BatchedStage } from '../core/vocabulary.js';
import {
  batchCounts,
  getPageSamples,
  getStageBatch,
  type PageSample,
  type StageKey,
} from '../db/queries/stage-batches.js';
import { checkStoredPart, parseStoredPart, StoredSampleCorruptError, ToolsetCache } from '../db/sample-codec.js';
import { type Queryable, withTransaction } from '../db/tx.js';
import { keepHeartbeating } from './heartbeat.js';

/** One batched stage's part in {@link runStageBatch}: where its work comes from, what it does, what it writes. */
export interface StageBatchSpec<Item extends { seq: number; sampleId: string }, Done> {
  stage: BatchedStage;
  /** The activity's input: whose batch, which batch, and items per page (per round trip, per settled group of calls). */
  input: StageKey & { batch: BatchRef; pageSize: number };
  /**
   * The items of the range (after `afterSeq`) that have no result yet, in seq order. Reading "what is left" from the
   * results table, not trusting a cursor, is what makes a retried batch resume after its last written page and never
   * do an item twice.
   */
  pending(range: SeqRange & { limit: number }): Promise<Item[]>;
  /**
   * `pending` only reads (no state of its own changes), so the next page is read while this page's calls run: its
   * range starts after this page's last item, so nothing this page writes changes what it reads.
   */
  prefetch?: boolean;
  /**
   * One promise per unit of work on the page (a sample, an expansion slot), with the page's samples decoded; the
   * activity's signal aborts them all.
   */
  work(items: Item[], samples: ReadonlyMap<string, Sample>, signal: AbortSignal): Promise<Done>[];
  /** A step between settling and writing that needs the database (EDDE's dedup against what the loop has). */
  review?(done: Done[]): Promise<void>;
  /** Writes what finished on the page, in one transaction (on the pool itself when `writeIsOneStatement`). */
  write(tx: Queryable, done: Done[]): Promise<void>;
  /** `write` is one statement (atomic on its own): it runs without BEGIN/COMMIT, two round trips fewer per page. */
  writeIsOneStatement?: boolean;
  /** What one finished unit adds to the heartbeat's running counts. */
  tally(done: Done): Record<string, number>;
  /** Toolsets decoded on earlier pages (db/sample-codec.ts ToolsetCache); without one, each page decodes its own. */
  toolsets?: ToolsetCache;
}

/**
 * The batch loop of the model-facing stages (probe, judge, expand), written once: page through what is left of the
 * batch's seq range, loading each page's samples; settle every unit of the page (what finished is kept even when one failed, and no request is
 * left running after the activity gives up); write the page in one transaction; then fail with the first failure,
 * or heartbeat the cursor and go on. The result is counted from the tables, so a batch retried after writing part of
 * its work still reports all of it. Cancellation (delivered through heartbeats) aborts in-flight requests at once.
 */
export async function runStageBatch<Item extends { seq: number; sampleId: string }, Done>(
  pool: pg.Pool,
  spec: StageBatchSpec<Item, Done>,
): Promise<Record<string, number>> {
  const context = Context.current();
  const signal = context.cancellationSignal;
  // Every request of a page (and every one waiting for an endpoint slot) listens on this one signal: hundreds at once
  // is expected, not a leak.
  setMaxListeners(0, signal);
  const key: StageKey = { loopName: spec.input.loopName, iteration: spec.input.iteration };
  const batch = spec.input.batch;
  const range =
    'batchNo' in batch ? await getStageBatch(pool, { ...key, stage: spec.stage, batchNo: batch.batchNo }) : batch;
  const counts: Record<string, number> = {};
  // Each page is written whole (or the activity fails), so the next page starts after the last one's items; the
  // results table, not this cursor, is what a retry resumes from.
  let cursor = range.afterSeq;
  // Heartbeat the last written cursor every second for as long as the batch runs, not only between pages: a page's
  // calls may wait minutes on a slow or hanging server, and the heartbeat is how a terminated or cancelled loop reaches
  // this activity (its requests would otherwise hold server slots and go on calling the model for a loop that no
  // longer runs) and how a dead worker is noticed within the heartbeat timeout.
  let beat: Record<string, number> = { lastSeq: cursor };
  await keepHeartbeating(
    () => beat,
    async () => {
      const load = async (after: number): Promise<{ items: Item[]; samples: Map<string, Sample> }> => {
        const items = await spec.pending({ afterSeq: after, lastSeq: range.lastSeq, limit: spec.input.pageSize });
        if (items.length === 0) return { items, samples: new Map() };
        return {
          items,
          samples: decodePageSamples(
            await getPageSamples(
              pool,
              items.map((item) => item.sampleId),
            ),
            spec.toolsets,
          ),
        };
      };
      let next = load(cursor);
      for (;;) {
        const { items, samples } = await next;
        if (items.length === 0) break;
        const last = items[items.length - 1]!.seq;
        if (spec.prefetch) {
          next = load(last);
          // Awaited with the next page; a page that fails first leaves it unread, not unhandled.
          next.catch(() => {});
        }
        const settled = await Promise.allSettled(spec.work(items, samples, signal));
        const done = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
        await spec.review?.(done);
        if (spec.writeIsOneStatement) await spec.write(pool, done);
        else await withTransaction(pool, (tx) => spec.write(tx, done));
        for (const unit of done)
          for (const [key, n] of Object.entries(spec.tally(unit))) counts[key] = (counts[key] ?? 0) + n;
        const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failure) throw failure.reason;
        cursor = last;
        beat = { lastSeq: cursor, ...counts };
        context.heartbeat(beat);
        if (!spec.prefetch) next = load(cursor);
      }
    },
  );
  return batchCounts(pool, { ...key, ...range, stage: spec.stage });
}

/**
 * A page's samples, parsed losslessly and validated as `decodeSample` does (same checks, same errors), each toolset's
 * tools once: the samples of one toolset share its parsed list, which nothing changes. With `known`, a toolset decoded
 * on an earlier page is taken from it instead of being parsed again (its id is the hash of the same JSON), and a new
 * toolset's tools are taken from the tools it has decoded before (db/sample-codec.ts ToolsetCache).
 */
export function decodePageSamples(
  rows: readonly PageSample[],
  known: ToolsetCache = new ToolsetCache(),
): Map<string, Sample> {
  const toolsets = new Map<string, Sample['tools']>();
  const out = new Map<string, Sample>();
  for (const row of rows) {
    const part = (name: string, text: string) => parseStoredPart(row.id, name, text);
    const check = <T>(schema: z.ZodType<T>, value: unknown) => checkStoredPart(row.id, schema, value);
    // Parsed in decodeSample's order (tools, messages, target), then checked in the schema's order, so the first
    // problem is the one Sample.safeParse reports first.
    // A toolset already decoded (on this page or an earlier one) was valid then and is the same JSON; a toolset all of
    // whose tools are valid decodes without a problem to report.
    let tools = toolsets.get(row.toolsetId);
    if (tools === undefined && row.toolsJson !== null) {
      tools = known.get(row.toolsetId) ?? known.decodeTools(row.toolsJson);
      if (tools !== undefined) toolsets.set(row.toolsetId, tools);
    }
    const toolsValue = row.toolsJson === null || tools !== undefined ? undefined : part('tools', row.toolsJson);
    const messagesValue = part('messages', row.messagesJson);
    const targetValue = part('target', row.targetJson);
    if (toolsValue !== undefined) {
      tools = check(Sample.shape.tools, toolsValue);
      toolsets.set(row.toolsetId, tools);
    }
    if (!tools) throw new StoredSampleCorruptError(row.id, `tools: toolset ${row.toolsetId} was not read`);
    if (row.toolsJson !== null && known.get(row.toolsetId) !== tools) known.set(row.toolsetId, tools);
    out.set(row.id, {
      tools,
      messages: check(Sample.shape.messages, messagesValue),
      target: check(Sample.shape.target, targetValue),
    });
  }
  return out;
}
