import { hash } from 'node:crypto';
import type { z } from 'zod';
import { canonicalJson, JsonFloat, jsonArrayElementTexts, parseJson, plainJson, type JsonValue } from '../core/json.js';
import { FunctionDefinition } from '../core/schemas/function-def.js';
import {
  keptPerSharedToolList,
  Sample,
  shareTool,
  shareToolList,
  toolListJson,
  withKnownId,
} from '../core/schemas/sample.js';
import type { StoredSample } from './queries/samples.js';

/** Thrown when a stored row no longer parses as a sample: the database was written by something else, or corrupted. */
export class StoredSampleCorruptError extends Error {
  constructor(
    readonly sampleId: string,
    reason: string,
  ) {
    super(`stored sample ${sampleId} does not parse: ${reason}`);
    this.name = 'StoredSampleCorruptError';
  }
}

// The one-shot hash: no Hash object per sample (about a microsecond each, on a path run once per imported sample).
const sha256 = (text: string) => hash('sha256', text, 'hex');

/**
 * The store's form of a sample: canonical JSON text of each part and the content hashes. The ids equal core's
 * `sampleId` and `contentHash` (same canonical text, same SHA-256; a test holds them together) but use Node's native
 * hash, since this runs once per imported sample. Non-finite numbers (NaN, Infinity) are refused: PostgreSQL's JSON
 * cannot hold them, and no tool argument should be one.
 */
export function encodeSample(sample: Sample): StoredSample {
  const toolsJson = toolListJson(sample.tools);
  const messagesJson = plainJson(sample.messages, CANONICAL);
  const targetJson = plainJson(sample.target, CANONICAL);
  // Plain parts hold only finite numbers; anything else is written and checked the general way below.
  if (toolsJson === undefined || messagesJson === undefined || targetJson === undefined) return encodeGeneral(sample);
  return {
    id: sha256(`{"messages":${messagesJson},"target":${targetJson},"tools":${toolsJson}}`),
    toolsetId: toolsetIdOf(sample.tools, toolsJson),
    toolsJson,
    messagesJson,
    targetJson,
    nTools: sample.tools.length,
  };
}

const CANONICAL = { sortKeys: true } as const;

/** A tool list's toolset id, the hash of its canonical JSON: kept per shared list (core/schemas/sample.ts). */
const toolsetIdOf = keptPerSharedToolList((_tools, toolsJson: string) => sha256(toolsJson));

/** {@link encodeSample} for samples with non-finite or otherwise unusual numbers: core/json.ts writes them. */
function encodeGeneral(sample: Sample): StoredSample {
  const toolsJson = canonicalJson(sample.tools);
  const messagesJson = canonicalJson(sample.messages);
  const targetJson = canonicalJson(sample.target);
  if (hasNonFinite(sample.messages) || hasNonFinite(sample.target) || hasNonFinite(sample.tools)) {
    throw new RangeError('a sample may not contain NaN or Infinity');
  }
  return {
    // Canonical JSON of {tools, messages, target}: keys in sorted order, assembled from the parts already written.
    id: sha256(`{"messages":${messagesJson},"target":${targetJson},"tools":${toolsJson}}`),
    toolsetId: sha256(toolsJson),
    toolsJson,
    messagesJson,
    targetJson,
    nTools: sample.tools.length,
  };
}

function hasNonFinite(value: unknown): boolean {
  if (typeof value === 'number') return !Number.isFinite(value);
  if (value instanceof JsonFloat) return !Number.isFinite(value.value);
  if (value === null || typeof value !== 'object') return false;
  return Object.values(value).some(hasNonFinite);
}

/** One stored part of a sample (`tools`, `messages`, `target`) parsed losslessly, or the row is corrupt. */
export function parseStoredPart(sampleId: string, name: string, text: string): JsonValue {
  const parsed = parseJson(text);
  if (!parsed.ok) throw new StoredSampleCorruptError(sampleId, `${name}: ${parsed.error.message}`);
  return parsed.value;
}

/** A parsed part checked with its schema (`Sample.shape.*`), or the row is corrupt (the schema's first issue). */
export function checkStoredPart<T>(sampleId: string, schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new StoredSampleCorruptError(sampleId, result.error.issues[0]?.message ?? 'invalid');
  return result.data;
}

/**
 * Decoded tool lists by toolset id, and decoded tools by their stored text, for readers of many stored samples (a
 * stage's pages, an export). A toolset id is the sha256 of its stored JSON, so a cached list is what decoding that JSON
 * again would give. Lists and tools are never changed once read (tools are frozen: {@link shareTool}), so one object
 * serves every sample that has it, and what is derived from a list or a tool (the prompt's tools section, the rendered
 * tool lines, the checker's compiled parameters) is derived once per object. Seed data repeats few tools in many
 * lists (20,000 samples: 7,206 distinct lists of 38 distinct tools), and parsing, validating and rendering each list
 * was about a sixth of a probe worker's CPU. Bounded: a map that is full is emptied (cheaper than LRU bookkeeping
 * per sample), so memory stays flat however many samples pass.
 */
export class ToolsetCache {
  private readonly lists = new Map<string, Sample['tools']>();
  private readonly tools = new Map<string, FunctionDefinition>();

  constructor(private readonly limit = 4096) {}

  get(toolsetId: string): Sample['tools'] | undefined {
    return this.lists.get(toolsetId);
  }

  set(toolsetId: string, tools: Sample['tools']): void {
    if (this.lists.size >= this.limit) this.lists.clear();
    this.lists.set(toolsetId, tools);
  }

  /**
   * A stored toolset's tools, each looked up by its text and parsed and checked (as `Sample.shape.tools` checks each
   * element) only when new; undefined when the text is not an array of valid tools, for the caller to decode the
   * general way, which reports the problem as `decodeSample` does. An element's parsed value does not depend on the
   * array around it, and the list schema checks nothing beyond its elements, so the list is the one decoding the
   * whole text gives.
   */
  decodeTools(toolsJson: string): Sample['tools'] | undefined {
    const texts = jsonArrayElementTexts(toolsJson);
    if (texts === undefined) return undefined;
    const out: Sample['tools'] = [];
    for (const text of texts) {
      let tool = this.tools.get(text);
      if (tool === undefined) {
        const parsed = parseJson(text);
        if (!parsed.ok) return undefined;
        const checked = FunctionDefinition.safeParse(parsed.value);
        if (!checked.success) return undefined;
        tool = shareTool(checked.data);
        if (this.tools.size >= this.limit) this.tools.clear();
        this.tools.set(text, tool);
      }
      out.push(tool);
    }
    return out;
  }
}

/**
 * A decoder for reading many stored samples in a row (an export): each sample as {@link decodeSample} gives it (same
 * checks, same errors), but each toolset's tools decoded once (and each distinct tool once: {@link ToolsetCache}) and
 * shared by its samples (core/schemas/sample.ts shareToolList), and each sample frozen with the id it was stored under
 * (withKnownId), so `sampleId` and the rendered tools block (core/formats/qwen.ts) are not derived again per sample.
 */
export function createSampleDecoder(options: { maxToolsets?: number } = {}): (stored: StoredSample) => Sample {
  const toolsets = new ToolsetCache(options.maxToolsets ?? 1_000);
  return (stored) => {
    const part = (name: string, text: string) => parseStoredPart(stored.id, name, text);
    const check = <T>(schema: z.ZodType<T>, value: unknown) => checkStoredPart(stored.id, schema, value);
    // decodeSample's order: every part parsed (tools, messages, target), then checked in the schema's order.
    let tools = toolsets.get(stored.toolsetId) ?? toolsets.decodeTools(stored.toolsJson);
    const toolsValue = tools === undefined ? part('tools', stored.toolsJson) : undefined;
    const messagesValue = part('messages', stored.messagesJson);
    const targetValue = part('target', stored.targetJson);
    tools ??= check(Sample.shape.tools, toolsValue);
    if (toolsets.get(stored.toolsetId) !== tools) toolsets.set(stored.toolsetId, shareToolList(tools));
    return withKnownId(
      {
        tools,
        messages: check(Sample.shape.messages, messagesValue),
        target: check(Sample.shape.target, targetValue),
      },
      stored.id,
    );
  };
}

/** Parses a stored sample back (losslessly: floats stay floats) and validates it with the core schema. */
export function decodeSample(stored: StoredSample): Sample {
  const part = (name: string, text: string) => parseStoredPart(stored.id, name, text);
  return checkStoredPart(stored.id, Sample, {
    tools: part('tools', stored.toolsJson),
    messages: part('messages', stored.messagesJson),
    target: part('target', stored.targetJson),
  });
}
