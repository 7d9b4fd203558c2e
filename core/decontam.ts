/**
 * Decontamination (LOOPTOOL-METHOD.md §6.3, §10.4 item 9): which training samples overlap the evaluation sets. Two
 * kinds of overlap are found, per sample:
 *
 * - tool names: the sample offers a tool whose normalised name ({@link normalizeToolName}) is the name of a function
 *   some evaluation question offers; BFCL's pool shares tool names with ToolACE-style seed data (§5.2), so a model
 *   trained on them has seen the evaluation's APIs;
 * - n-grams: a user message of the sample shares a run of `ngram` word tokens ({@link wordTokens}) with a user message
 *   of an evaluation question (13 by default, GPT-3's choice); a question shorter than that, but at least
 *   `minQuestionTokens` long, counts as one n-gram of its whole text, so a verbatim copy of a short question is found.
 *
 * Pure and deterministic: the index of the evaluation questions is built once per run, and each sample is checked in
 * O(tokens × ngram) hash steps, with an exact text comparison only on a hash hit.
 */
import { z } from 'zod';
import { DecontaminationConfig, EvalSetConfig, LoopName } from './config.js';
import { contentHash } from './hash.js';
import { accept, type Converted, parseWith } from './formats/rejection.js';
import type { JsonValue } from './json.js';

/** Changes whenever normalisation or matching changes, so stored checks of an older rule are never reused. */
export const DECONTAM_ALGORITHM = 'looptool-decontam-v1';

/** At most this many matched questions are recorded per sample: enough to say which, bounded for popular n-grams. */
export const MAX_RECORDED_QUESTIONS = 8;

/** The settings that decide what overlaps (the loop config's `decontamination`, less what only the loop uses). */
export type OverlapSettings = Pick<DecontaminationConfig, 'ngram' | 'minQuestionTokens'>;

/**
 * A tool name as it is compared: Unicode-compatibility folded, camelCase split, lowercased, and every run of
 * characters that are not letters or digits one `_` (`math.hypot`, `Math_Hypot`, `mathHypot` and `math-hypot` are all
 * `math_hypot`), because the same API is spelt all these ways across ToolACE, xLAM and BFCL.
 */
export function normalizeToolName(name: string): string {
  return name
    .normalize('NFKC')
    .replace(/(\p{Ll}|\p{N})(\p{Lu})/gu, '$1_$2')
    .replace(/(\p{Lu})(\p{Lu}\p{Ll})/gu, '$1_$2')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '_')
    .replace(/^_+|_+$/g, '');
}

/**
 * A text's word tokens: compatibility-decomposed with accents dropped (`café` is `cafe`), lowercased, and split into
 * runs of letters and digits, so punctuation, spacing and case never hide a copy. Scripts written without spaces give
 * one token per run, which only makes n-gram matches there rarer, never false.
 */
export function wordTokens(text: string): string[] {
  return (
    text
      .normalize('NFKD')
      .replace(/\p{M}+/gu, '')
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? []
  );
}

/** One evaluation question as the index needs it: where it is from, its user messages and its functions' names. */
export interface EvalQuestion {
  /** `<set>/<question id>`: how the question is named in results. */
  key: string;
  userTexts: string[];
  toolNames: string[];
}

/** What one sample shares with the evaluation questions; empty lists when nothing. Both sorted. */
export interface SampleOverlap {
  /** Normalised tool names the sample offers that evaluation questions offer too. */
  toolNames: string[];
  /** Keys of the questions whose user text shares an n-gram with the sample's (at most {@link MAX_RECORDED_QUESTIONS}). */
  questions: string[];
}

/** The two lanes' starting values (and token-hash seeds): independent, so a false hit needs both to collide. */
const LANE_SEED_A = 0x811c9dc5;
const LANE_SEED_B = 0x9747b28c;

/** FNV-1a over a token's UTF-16 code units, from `seed`; two seeds give two independent 32-bit lanes. */
function tokenHash(token: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < token.length; i++) h = Math.imul(h ^ token.charCodeAt(i), 0x01000193);
  return h;
}

/** Extends a window hash by one token hash (order matters: `a b` and `b a` differ). */
function extend(h: number, token: number, multiplier: number): number {
  const x = Math.imul(h ^ token, multiplier);
  return x ^ (x >>> 15);
}

/** Two 32-bit lanes as one exact float key below 2^53 (a Map key without building a string per window). */
const gramKey = (a: number, b: number) => (a >>> 0) * 2_097_152 + (b >>> 11);

interface GramEntry {
  /** The n-gram's tokens joined by one space: compared on a hash hit, so a collision never reports a false overlap. */
  text: string;
  questions: string[];
}

/**
 * A one-byte-per-slot prefilter over the key's low bits: nearly every window of a clean sample misses it, and a miss
 * skips the Map lookup of a 53-bit float key, the costliest step. 2^20 slots for BFCL's ~22,000 n-grams pass about 2%.
 */
const FILTER_BITS = 20;
const filterSlot = (b: number) => (b >>> 11) & ((1 << FILTER_BITS) - 1);

/**
 * Every window of up to `maxLength` tokens of `tokens` whose length `wanted` marks (and, given a prefilter, whose slot
 * is set in it), as (start, length, key).
 */
function forEachWindow(
  tokens: readonly string[],
  maxLength: number,
  wanted: readonly boolean[],
  visit: (start: number, length: number, key: number) => void,
  prefilter?: Uint8Array,
): void {
  const lanesA = tokens.map((t) => tokenHash(t, LANE_SEED_A));
  const lanesB = tokens.map((t) => tokenHash(t, LANE_SEED_B));
  for (let start = 0; start < tokens.length; start++) {
    let a = LANE_SEED_A;
    let b = LANE_SEED_B;
    const longest = Math.min(maxLength, tokens.length - start);
    for (let length = 1; length <= longest; length++) {
      a = extend(a, lanesA[start + length - 1]!, 0x9e3779b1);
      b = extend(b, lanesB[start + length - 1]!, 0x85ebca77);
      if (wanted[length] && (!prefilter || prefilter[filterSlot(b)] === 1)) visit(start, length, gramKey(a, b));
    }
  }
}

/**
 * The evaluation questions' n-grams and tool names, built once per run and then asked about every sample. Memory is
 * one entry per distinct n-gram of the questions (BFCL's 1,240 non-live questions: about 20,000), whatever the size
 * of the versions checked against it.
 */
export class EvalOverlapIndex {
  private readonly grams = new Map<number, GramEntry[]>();
  private readonly prefilter = new Uint8Array(1 << FILTER_BITS);
  private readonly tools = new Set<string>();
  /** wanted[m]: some question contributes a gram of m tokens (m = ngram, or a short question's whole length). */
  private readonly wanted: boolean[];
  private questionCount = 0;

  constructor(readonly settings: OverlapSettings) {
    this.wanted = new Array<boolean>(settings.ngram + 1).fill(false);
  }

  add(question: EvalQuestion): void {
    this.questionCount++;
    for (const name of question.toolNames) {
      const normalized = normalizeToolName(name);
      if (normalized) this.tools.add(normalized);
    }
    const { ngram, minQuestionTokens } = this.settings;
    for (const text of question.userTexts) {
      const tokens = wordTokens(text);
      // A long question contributes every window of `ngram` tokens, a short one its whole text as one gram.
      const length = tokens.length >= ngram ? ngram : tokens.length >= minQuestionTokens ? tokens.length : 0;
      if (length === 0) continue;
      this.wanted[length] = true;
      const onlyThisLength = this.wanted.map((_, m) => m === length);
      forEachWindow(tokens, length, onlyThisLength, (start, _length, key) =>
        this.addGram(key, tokens.slice(start, start + length).join(' '), question.key),
      );
    }
  }

  /** What a sample (its user messages and the names of the tools it offers) shares with the questions. */
  overlap(sample: { userTexts: readonly string[]; toolNames: readonly string[] }): SampleOverlap {
    return { toolNames: this.sharedToolNames(sample.toolNames), questions: this.sharedQuestions(sample.userTexts) };
  }

  /** The normalised names among `names` that evaluation questions offer, sorted and unique. */
  sharedToolNames(names: readonly string[]): string[] {
    const shared = new Set<string>();
    for (const name of names) {
      const normalized = normalizeToolName(name);
      if (this.tools.has(normalized)) shared.add(normalized);
    }
    return [...shared].sort();
  }

  /** The keys of questions whose n-grams occur in `userTexts`, sorted, at most {@link MAX_RECORDED_QUESTIONS}. */
  sharedQuestions(userTexts: readonly string[]): string[] {
    if (this.grams.size === 0) return [];
    const found = new Set<string>();
    for (const text of userTexts) {
      const tokens = wordTokens(text);
      forEachWindow(
        tokens,
        this.settings.ngram,
        this.wanted,
        (start, length, key) => {
          const entries = this.grams.get(key);
          if (!entries) return;
          const window = tokens.slice(start, start + length).join(' ');
          for (const entry of entries) if (entry.text === window) for (const q of entry.questions) found.add(q);
        },
        this.prefilter,
      );
    }
    return [...found].sort().slice(0, MAX_RECORDED_QUESTIONS);
  }

  /** Sizes, for the index's record and the report. */
  get stats(): { questions: number; toolNames: number; ngrams: number } {
    return { questions: this.questionCount, toolNames: this.tools.size, ngrams: this.grams.size };
  }

  private addGram(key: number, text: string, questionKey: string): void {
    // The key's low 21 bits are b >>> 11 (gramKey), the bits the prefilter slot is taken from.
    this.prefilter[(key % 2_097_152) & ((1 << FILTER_BITS) - 1)] = 1;
    const entries = this.grams.get(key) ?? [];
    if (entries.length === 0) this.grams.set(key, entries);
    let entry = entries.find((e) => e.text === text);
    if (!entry) entries.push((entry = { text, questions: [] }));
    // A question adds each of its n-grams once, however often the n-gram repeats in it.
    if (entry.questions[entry.questions.length - 1] !== questionKey) entry.questions.push(questionKey);
  }
}

/**
 * A BFCL question record as decontamination reads it: more leniently than the evaluation does (core/formats/bfcl.ts),
 * since multi-turn questions, which the evaluation cannot run, still must not leak into training data. Every user
 * message of every turn counts; `function` may be absent (multi-turn files name their classes instead).
 */
const EvalQuestionRecord = z.object({
  id: z.string().min(1),
  question: z.array(z.array(z.looseObject({ role: z.string(), content: z.unknown() }))).min(1),
  function: z.array(z.looseObject({ name: z.string().min(1) })).optional(),
});

/** One question record of a set's file, or why it cannot be read (the field and the reason). */
export function evalQuestionFromRecord(record: JsonValue, set: string): Converted<EvalQuestion> {
  const parsed = parseWith(EvalQuestionRecord, record);
  if (!parsed.ok) return parsed;
  const { id, question, function: functions } = parsed.value;
  const userTexts = question
    .flat()
    .filter((m) => m.role === 'user' && typeof m.content === 'string')
    .map((m) => m.content as string);
  return accept({ key: `${set}/${id}`, userTexts, toolNames: (functions ?? []).map((f) => f.name) });
}

/** One evaluation file as it went into an index: its set, path as configured, content hash and question count. */
export interface EvalIndexSource {
  set: string;
  file: string;
  sha256: string;
  questions: number;
}

/**
 * The identity of an index: the algorithm, the overlap settings and the files' contents (by hash, with their set
 * names, which appear in the results), not their paths. Checks stored under it stay valid for any loop or command that
 * builds the same index, and a changed file or setting makes a new one.
 */
export function evalIndexFingerprint(settings: OverlapSettings, sources: readonly EvalIndexSource[]): string {
  const files = sources
    .map((s) => ({ set: s.set, sha256: s.sha256 }))
    .sort((x, y) => (x.set + x.sha256 < y.set + y.sha256 ? -1 : 1));
  return contentHash({
    algorithm: DECONTAM_ALGORITHM,
    ngram: settings.ngram,
    minQuestionTokens: settings.minQuestionTokens,
    files,
  });
}

/** Whether a stored overlap counts as contamination under the loop's settings (`toolNames` decides for tool names). */
export const isContaminated = (overlap: SampleOverlap, countToolNames: boolean) =>
  overlap.questions.length > 0 || (countToolNames && overlap.toolNames.length > 0);

const positiveInt = z.number().int().positive();

/**
 * The loop's decontamination settings and evaluation sets, as an activity receives them. With no sets there is
 * nothing to check against: the activities return null, and `exclude` has no effect.
 */
const DecontamSettingsInput = {
  evalSets: z.array(EvalSetConfig),
  settings: DecontaminationConfig,
  /** Samples per database round trip. */
  pageSize: positiveInt.max(50_000).default(2_000),
};

/** Overlap of one dataset version (the loop calls it for every version it builds): checks its members, stores its report. */
export const DecontaminateVersionInput = z.object({ ...DecontamSettingsInput, versionId: positiveInt });
export type DecontaminateVersionInput = z.input<typeof DecontaminateVersionInput>;

/**
 * Checks everything the next assembly may draw from, so that it can leave the overlapping samples out: the members of
 * `versionIds` (the seed pool, and D_j for its high-perplexity part), the new samples of `iteration` (judged samples,
 * their label corrections, accepted expansions) and the samples of the injected staging batches.
 */
export const CheckAssemblyCandidatesInput = z.object({
  ...DecontamSettingsInput,
  /** Version ids, or refs (`dataset`, `dataset@n`): before D_1 the loop knows its seed pool by the config's ref. */
  versionIds: z.array(z.union([positiveInt, z.string().min(1)])),
  iteration: z.object({ loopName: LoopName, iteration: positiveInt }).optional(),
  injectBatchIds: z.array(z.string().min(1)).default([]),
});
export type CheckAssemblyCandidatesInput = z.input<typeof CheckAssemblyCandidatesInput>;

/** What the loop keeps of a version's check (its history stays small; the full report is in the database). */
export interface DecontamVersionSummary {
  /** The evaluation index the version was checked against: what assembly's exclusion needs. */
  indexId: number;
  versionId: number;
  members: number;
  toolNameOverlaps: number;
  ngramOverlaps: number;
  /** Members that count as contaminated under `settings.toolNames`. */
  contaminated: number;
  /** Members checked by this call (the rest were checked before, under the same index). */
  checkedNow: number;
}
