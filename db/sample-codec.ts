import { createHash } from 'node:crypto';
import { canonicalJson, JsonFloat, parseJson } from '../core/json.js';
import { Sample } from '../core/schemas/sample.js';
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

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * The store's form of a sample: canonical JSON text of each part and the content hashes. The ids equal core's
 * `sampleId` and `contentHash` (same canonical text, same SHA-256; a test holds them together) but use Node's native
 * hash, since this runs once per imported sample. Non-finite numbers (NaN, Infinity) are refused: PostgreSQL's JSON
 * cannot hold them, and no tool argument should be one.
 */
export function encodeSample(sample: Sample): StoredSample {
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

/** Parses a stored sample back (losslessly: floats stay floats) and validates it with the core schema. */
export function decodeSample(stored: StoredSample): Sample {
  const part = (name: string, text: string) => {
    const parsed = parseJson(text);
    if (!parsed.ok) throw new StoredSampleCorruptError(stored.id, `${name}: ${parsed.error.message}`);
    return parsed.value;
  };
  const result = Sample.safeParse({
    tools: part('tools', stored.toolsJson),
    messages: part('messages', stored.messagesJson),
    target: part('target', stored.targetJson),
  });
  if (!result.success) throw new StoredSampleCorruptError(stored.id, result.error.issues[0]?.message ?? 'invalid');
  return result.data;
}
