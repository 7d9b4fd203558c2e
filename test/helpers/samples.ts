import { createHash } from 'node:crypto';
import type { StoredSample } from '../../db/queries/samples.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * A small, valid stored sample whose content is determined by `n` (and `variant` for a relabeled twin), for tests of
 * the store that do not care about tool-call semantics.
 */
export function storedSample(n: number, variant = 0, toolsetSize = 3): StoredSample {
  const tools = Array.from({ length: toolsetSize }, (_, i) => ({
    type: 'function',
    function: { name: `tool_${n % 7}_${i}`, parameters: { type: 'object', properties: { x: { type: 'integer' } } } },
  }));
  const toolsJson = JSON.stringify(tools);
  const messagesJson = JSON.stringify([{ role: 'user', content: `request ${n}` }]);
  const targetJson = JSON.stringify({
    kind: 'calls',
    calls: [{ name: `tool_${n % 7}_0`, arguments: { x: n + variant * 1000 } }],
  });
  return {
    id: sha256(JSON.stringify([toolsJson, messagesJson, targetJson])),
    toolsetId: sha256(toolsJson),
    toolsJson,
    messagesJson,
    targetJson,
    nTools: toolsetSize,
  };
}
