import { z } from 'zod';
import { contentHash, sha256Hex } from '../hash.js';
import { canonicalJson, plainJson, stringifyJson } from '../json.js';
import { FunctionDefinition } from './function-def.js';
import { ChatMessage } from './messages.js';
import { AcceptableCall, ToolCall } from './tool-call.js';

/** The expected answer is exactly these calls (in any order). */
export const CallsTarget = z.object({ kind: z.literal('calls'), calls: z.array(ToolCall).min(1) });
export type CallsTarget = z.infer<typeof CallsTarget>;

/** The expected answer is no tool call; `text` is the reference answer when the source has one. */
export const TextTarget = z.object({ kind: z.literal('text'), text: z.string().optional() });
export type TextTarget = z.infer<typeof TextTarget>;

/** The expected answer is these calls, each argument one of several acceptable values (BFCL possible answers). */
export const AcceptableTarget = z.object({ kind: z.literal('acceptable'), calls: z.array(AcceptableCall).min(1) });
export type AcceptableTarget = z.infer<typeof AcceptableTarget>;

/** What the next assistant turn should do. */
export const Target = z.discriminatedUnion('kind', [CallsTarget, TextTarget, AcceptableTarget]);
export type Target = z.infer<typeof Target>;

/**
 * One training or evaluation example: the tools offered, the conversation so far, and what the next assistant turn
 * should do. Immutable and content-addressed: its id is {@link sampleId}.
 */
export const Sample = z.object({
  tools: z.array(FunctionDefinition),
  messages: z.array(ChatMessage).min(1),
  target: Target,
});
export type Sample = z.infer<typeof Sample>;

/**
 * A sample's id: the SHA-256 hex of the canonical JSON of `{tools, messages, target}` (keys sorted, floats kept as
 * floats). Key order in the source never changes it; any change of content does. Pure, so workflows can compute it.
 */
export function sampleId(sample: Sample): string {
  const known = knownIds.get(sample);
  if (known !== undefined) return known;
  const json = sampleJson(sample);
  return json === undefined
    ? contentHash({ tools: sample.tools, messages: sample.messages, target: sample.target })
    : sha256Hex(json);
}

/**
 * The canonical JSON of `{tools, messages, target}` that {@link sampleId} hashes, assembled from its parts (keys in
 * sorted order), so that a shared tool list is written once for all its samples rather than once per sample; or
 * undefined when a part holds what the plain writer (core/json.ts plainJson) leaves to the general one (NaN, Infinity, huge integers, a missing
 * part), which the caller then writes whole the general way.
 */
export function sampleJson(sample: Sample): string | undefined {
  const tools = toolListJson(sample.tools);
  const messages = plainJson(sample.messages, CANONICAL);
  const target = plainJson(sample.target, CANONICAL);
  if (tools === undefined || messages === undefined || target === undefined) return undefined;
  return `{"messages":${messages},"target":${target},"tools":${tools}}`;
}

const CANONICAL = { sortKeys: true } as const;

/**
 * Tool lists that many samples share (an import's repeated tool lists, a toolset read from the store once for all its
 * samples), with their canonical JSON written once (undefined when not plain: see {@link sampleJson}). Only lists
 * given to {@link shareToolList}, which freezes them, are kept here, so a list cannot change after its text was
 * written. Weak: a list nobody holds is forgotten with it.
 */
const sharedToolLists = new WeakMap<readonly FunctionDefinition[], string | undefined>();

/**
 * Marks a checked tool list as shared by many samples: freezes it (deeply: nothing may change a list other samples
 * hold) and writes its canonical JSON once. Returns the same list. Identity caches keyed by the list (its canonical
 * JSON here, its rendered tools block in core/formats/qwen.ts, its toolset id in db/sample-codec.ts) then hold.
 */
export function shareToolList<T extends FunctionDefinition[]>(tools: T): T {
  if (!sharedToolLists.has(tools)) {
    deepFreeze(tools);
    sharedToolLists.set(tools, plainJson(tools, CANONICAL));
  }
  return tools;
}

/** Tools given to {@link shareTool}. */
const sharedTools = new WeakSet<FunctionDefinition>();

/**
 * Marks a checked tool as shared by many tool lists (a reader of stored toolsets keeps one object per distinct tool:
 * thousands of lists are made of a few dozen tools): freezes it deeply, so identity caches keyed by the tool (its
 * rendered line in core/formats/qwen.ts, its compiled parameters in core/checker/exact-match.ts) hold. Returns it.
 */
export function shareTool<T extends FunctionDefinition>(tool: T): T {
  if (!sharedTools.has(tool)) {
    deepFreeze(tool);
    sharedTools.add(tool);
  }
  return tool;
}

/** Whether {@link shareTool} froze this tool. */
export function isSharedTool(tool: FunctionDefinition): boolean {
  return sharedTools.has(tool);
}

/** Whether {@link shareToolList} froze this list. */
export function isSharedToolList(tools: readonly FunctionDefinition[]): boolean {
  return sharedToolLists.has(tools);
}

/** A tool list's canonical JSON when it is plain (see {@link sampleJson}), written once for a shared list. */
export function toolListJson(tools: readonly FunctionDefinition[]): string | undefined {
  return sharedToolLists.has(tools) ? sharedToolLists.get(tools) : plainJson(tools, CANONICAL);
}

/**
 * `compute` kept per shared tool list ({@link shareToolList}: frozen, so what was computed from it cannot go stale),
 * computed each time for any other list. For what many samples of one toolset need alike (its texts, its hash).
 */
export function keptPerSharedToolList<A extends unknown[], T>(
  compute: (tools: readonly FunctionDefinition[], ...rest: A) => T,
): (tools: readonly FunctionDefinition[], ...rest: A) => T {
  const kept = new WeakMap<readonly FunctionDefinition[], T>();
  return (tools, ...rest) => {
    if (!sharedToolLists.has(tools)) return compute(tools, ...rest);
    let value = kept.get(tools);
    if (value === undefined) kept.set(tools, (value = compute(tools, ...rest)));
    return value;
  };
}

/**
 * A tool list's JSON text, keys in their order, as `stringifyJson(tools)` writes it; kept for a shared list, which
 * every exported verl row of its samples carries.
 */
export const toolListText = keptPerSharedToolList((tools) => stringifyJson(tools));

/** A tool list's canonical JSON, NaN and all (what `canonicalJson(tools)` writes). */
export function toolListCanonicalJson(tools: readonly FunctionDefinition[]): string {
  return toolListJson(tools) ?? canonicalJson(tools);
}

/** Ids of samples read from the store, recorded by {@link withKnownId}. */
const knownIds = new WeakMap<Sample, string>();

/**
 * Freezes a sample read from the store (deeply: its tool list should be shared already) and records the id its row was
 * written under, which {@link sampleId} then returns instead of hashing the sample again: a verl or TRL export names
 * every sample by id, and re-deriving the id cost as much as the rest of the row. Freezing makes the record safe: the
 * sample can no longer become different content with the old id. Returns the same sample.
 */
export function withKnownId(sample: Sample, id: string): Sample {
  deepFreeze(sample);
  knownIds.set(sample, id);
  return sample;
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
}
