import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { toolsFromJson } from '../../../core/formats/openai-chat.js';
import { policyPrompt } from '../../../core/formats/policy-prompt.js';
import { parseJson, type JsonValue } from '../../../core/json.js';
import type { Sample } from '../../../core/schemas/sample.js';
import { parsePromptTools } from '../../../sim/prompt-parse.js';
import { generateSeedData } from '../../../sim/seed-data.js';
import { startSimServer, type SimServer } from '../../../sim/server.js';

/**
 * The sim's caches on the policy path (tool blocks by their text, tools by their line) must answer exactly as reading
 * every request from scratch does: the same tools for every block, the same refusal of a block that does not read,
 * and byte for byte the same reply to a request served again.
 */

/** The tools of a block read whole, without the caches: every line parsed, the list validated at once. */
function uncachedTools(system: string): unknown {
  const start = system.indexOf('<tools>\n');
  const block = system.slice(start + '<tools>\n'.length, system.indexOf('</tools>', start)).trim();
  const items: JsonValue[] = [];
  for (const line of block.split('\n')) {
    if (line.trim() === '') continue;
    const parsed = parseJson(line);
    if (!parsed.ok) return undefined;
    items.push(parsed.value);
  }
  const tools = toolsFromJson(items);
  return tools.ok ? tools.value : undefined;
}

const systemOf = (sample: Sample): string => policyPrompt(sample)[0]!.content;

/** The system prompt with `line` added as the last line of its tool block (the prose names `</tools>` first). */
const withLine = (system: string, line: string): string => {
  const end = system.lastIndexOf('</tools>');
  return `${system.slice(0, end)}${line}\n${system.slice(end)}`;
};

describe('parsePromptTools', () => {
  const samples = generateSeedData({ count: 300, seed: 11, wrongLabelRate: 0 }).map((s) => s.sample);

  test('gives the tools of reading the block whole, on first sight and from the caches', () => {
    for (const round of [1, 2])
      for (const sample of samples) {
        const system = systemOf(sample);
        expect(parsePromptTools(system), `round ${round}`).toEqual(uncachedTools(system));
        expect(parsePromptTools(system)).toEqual(sample.tools);
      }
  });

  test('a block with a line that is not JSON, or not a tool, reads as no tools, also when its other lines are known', () => {
    const system = systemOf(samples[0]!);
    // Its lines are in the line cache now; each broken variant is a new block.
    parsePromptTools(system);
    const broken = [
      withLine(system, '{"type": "function", "function": {"name": '),
      withLine(system, '{"type": "function", "function": {"description": "no name"}}'),
      withLine(system, '"just a string"'),
    ];
    for (const variant of broken)
      for (const round of [1, 2]) {
        expect(uncachedTools(variant), `round ${round}`).toBeUndefined();
        expect(parsePromptTools(variant), `round ${round}`).toBeUndefined();
      }
    // A valid block made of a known line and a new one.
    const extra = withLine(
      system,
      '{"type": "function", "function": {"name": "extra_tool", "parameters": {"type": "dict", "properties": {"x": {"type": "str"}}}}}',
    );
    expect(parsePromptTools(extra)).toEqual(uncachedTools(extra));
    expect(parsePromptTools(extra)?.at(-1)?.name).toBe('extra_tool');
  });
});

describe('the sim server, asked the same thing again', () => {
  let sim: SimServer;
  beforeAll(async () => {
    sim = await startSimServer({ port: 0, seed: 7 });
  });
  afterAll(async () => sim?.close());

  const ask = async (sample: Sample): Promise<string> => {
    const response = await fetch(`${sim.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: sim.policyModel,
        messages: policyPrompt(sample),
        temperature: 0,
        max_tokens: 1024,
        logprobs: true,
      }),
    });
    expect(response.status).toBe(200);
    expect(Number(response.headers.get('content-length'))).toBe(Buffer.byteLength(await response.clone().text()));
    // The id counts completions and `created` is the clock: everything else is the answer.
    return (await response.text()).replace(/^\{"id":"[^"]*","object":"chat\.completion","created":\d+,/, '{');
  };

  test('answers byte for byte as the first time, whichever caches the first answer filled', async () => {
    const samples = generateSeedData({ count: 60, seed: 13, wrongLabelRate: 0.2 }).map((s) => s.sample);
    const first = await Promise.all(samples.map(ask));
    const again = await Promise.all(samples.map(ask));
    expect(again).toEqual(first);
    expect(first[0]).toMatch(/^\{"model":"sim-student","choices":\[\{"index":0,"message":/);
  });
});
