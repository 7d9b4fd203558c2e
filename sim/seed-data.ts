/**
 * Seed data for the loop: OpenAI chat JSONL over the sim world (importable with `looptool data import --format openai`),
 * with a known share of labels corrupted the ways real labels go wrong. Deterministic for a seed: the same options
 * always write the same file and corrupt the same samples.
 */
import type { JsonValue } from '../core/json.js';
import { openAiChatToSamples, sampleToOpenAiChat } from '../core/formats/openai-chat.js';
import { sampleId, type Sample, type Target } from '../core/schemas/sample.js';
import { writeJsonLines } from '../datasets/writers.js';
import { composeSample, PROFILE_WEIGHTS, type Profile } from './compose.js';
import { mutateCalls, type CallErrorKind } from './mutations.js';
import { hashHex, Rng } from './random.js';
import { replyOf, TruthResolver } from './truth.js';
import { getWorld } from './world.js';

/** How a seed label was corrupted. */
export type LabelCorruption = CallErrorKind;

export interface SeedDataOptions {
  /** Samples to write. @default 1500 */
  count?: number;
  /** @default 7 */
  seed?: number;
  /** Share of samples whose label is wrong. @default 0.15 */
  wrongLabelRate?: number;
  /** Start each conversation with a system prompt carrying the date. @default true */
  systemPrompt?: boolean;
}

/** One generated seed sample. */
export interface SeedSample {
  index: number;
  profile: Profile;
  /** The sample as imported (its target is the label, wrong or not). */
  sample: Sample;
  /** The content-addressed id the dataset store gives it. */
  id: string;
  /** The OpenAI chat record written to the file. */
  record: JsonValue;
  /** The correct target; differs from `sample.target` exactly when the label was corrupted. */
  trueTarget: Target;
  corruption?: LabelCorruption;
}

export interface SeedSummary {
  written: number;
  corrupted: number;
  byProfile: Record<string, number>;
  byCorruption: Record<string, number>;
}

function corruptionOrder(profile: Profile, rng: Rng): LabelCorruption[] {
  if (profile === 'irrelevance') return ['hallucinated_call'];
  const weighted: [LabelCorruption, number][] = [
    ['wrong_value', 0.35],
    ['missing_argument', 0.2],
    ['extra_argument', 0.15],
    ['wrong_function', profile === 'multiple' || profile === 'parallel_multiple' ? 0.3 : 0.1],
    ['dropped_call', profile === 'parallel' || profile === 'parallel_multiple' ? 0.6 : 0],
  ];
  const first = rng.weighted(weighted.filter(([, w]) => w > 0));
  return [
    first,
    ...rng
      .shuffle([
        'wrong_value',
        'missing_argument',
        'extra_argument',
        'wrong_function',
        'dropped_call',
      ] as LabelCorruption[])
      .filter((k) => k !== first),
  ];
}

/**
 * Generates the seed samples: profiles mixed by {@link PROFILE_WEIGHTS}, no conversation repeated, and exactly
 * round(count × wrongLabelRate) labels corrupted (which ones is decided by the seed).
 */
export function generateSeedData(options: SeedDataOptions = {}): SeedSample[] {
  const count = options.count ?? 1500;
  const seed = options.seed ?? 7;
  const rate = options.wrongLabelRate ?? 0.15;
  if (!Number.isInteger(count) || count < 1) throw new Error(`count must be a positive integer, got ${count}`);
  if (!(rate >= 0 && rate <= 1)) throw new Error(`wrong-label rate must be between 0 and 1, got ${rate}`);
  const world = getWorld();
  const resolver = new TruthResolver({ world, bfclDir: false });
  const rng = new Rng(`seed-data|${seed}`);
  const corruptedIndices = new Set(
    rng.shuffle(Array.from({ length: count }, (_, i) => i)).slice(0, Math.round(count * rate)),
  );
  const seen = new Set<string>();
  const out: SeedSample[] = [];
  for (let index = 0; index < count; index++) {
    for (let attempt = 0; ; attempt++) {
      if (attempt > 50)
        throw new Error(
          `could not compose a new conversation for sample ${index}; the world is too small for ${count} samples`,
        );
      const local = new Rng(`seed-data|${seed}|${index}|${attempt}`);
      const profile = local.weighted(PROFILE_WEIGHTS);
      const composed = composeSample(world, profile, local, { systemPrompt: options.systemPrompt ?? true });
      const question = hashHex(JSON.stringify([composed.tools.map((t) => t.name), composed.messages]));
      if (seen.has(question)) continue;
      const trueTarget: Target =
        composed.truth === 'no_call'
          ? { kind: 'text', ...(composed.text ? { text: composed.text } : {}) }
          : { kind: 'calls', calls: composed.truth };
      let label: Target = trueTarget;
      let corruption: LabelCorruption | undefined;
      if (corruptedIndices.has(index)) {
        const truthCalls = composed.truth === 'no_call' ? [] : composed.truth;
        const truth = resolver.resolve(composed.tools, composed.messages);
        for (const kind of corruptionOrder(profile, local)) {
          const calls = mutateCalls(kind, truthCalls, { tools: composed.tools, rng: local, world });
          if (!calls || calls.length === 0) continue;
          if (truth && resolver.isCorrect(truth, composed.tools, replyOf({ kind: 'calls', calls }))) continue;
          label = { kind: 'calls', calls };
          corruption = kind;
          break;
        }
        if (!corruption) continue;
      }
      const sample: Sample = { tools: composed.tools, messages: composed.messages, target: label };
      const record = sampleToOpenAiChat(sample);
      if (!record.ok) throw new Error(`sample ${index} cannot be written as OpenAI chat: ${record.rejection.reason}`);
      // The id the store will compute: read the record back exactly as `data import` does.
      const imported = openAiChatToSamples(record.value);
      if (!imported.ok)
        throw new Error(
          `sample ${index} does not read back: ${imported.rejection.field}: ${imported.rejection.reason}`,
        );
      const stored = imported.value[0] as Sample;
      seen.add(question);
      out.push({
        index,
        profile,
        sample: stored,
        id: sampleId(stored),
        record: record.value,
        trueTarget,
        ...(corruption ? { corruption } : {}),
      });
      break;
    }
  }
  return out;
}

/** Which seed samples carry a corrupted label: sample id → how it was corrupted (for tests and demo reports). */
export function corruptedSampleIds(options: SeedDataOptions = {}): Map<string, LabelCorruption> {
  return new Map(generateSeedData(options).flatMap((s) => (s.corruption ? [[s.id, s.corruption] as const] : [])));
}

/** Counts of a generated set by profile and by corruption. */
export function summarizeSeedData(samples: readonly SeedSample[]): SeedSummary {
  const byProfile: Record<string, number> = {};
  const byCorruption: Record<string, number> = {};
  for (const s of samples) {
    byProfile[s.profile] = (byProfile[s.profile] ?? 0) + 1;
    if (s.corruption) byCorruption[s.corruption] = (byCorruption[s.corruption] ?? 0) + 1;
  }
  return { written: samples.length, corrupted: samples.filter((s) => s.corruption).length, byProfile, byCorruption };
}

/**
 * Writes seed data to a JSONL file (and, with `corruptedOut`, the corrupted sample ids as `{id, corruption}` lines)
 * and returns the summary.
 */
export async function writeSeedData(
  file: string,
  options: SeedDataOptions & { corruptedOut?: string } = {},
): Promise<SeedSummary> {
  const samples = generateSeedData(options);
  await writeJsonLines(
    file,
    samples.map((s) => s.record),
  );
  if (options.corruptedOut) {
    await writeJsonLines(
      options.corruptedOut,
      samples.flatMap((s) =>
        s.corruption ? [{ id: s.id, index: s.index, corruption: s.corruption } as JsonValue] : [],
      ),
    );
  }
  return summarizeSeedData(samples);
}
