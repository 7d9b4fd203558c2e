import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { REWARD_SCORE_PATH, RewardErrorResponse, RewardResponse } from '../../../core/reward.js';
import { startRewardServer, type RewardServer } from '../../../services/reward-server.js';

const call = (name: string, args: string) => `<tool_call>\n{"name": "${name}", "arguments": ${args}}\n</tool_call>`;
const weatherTools = [
  { name: 'get_weather', parameters: { type: 'dict', properties: { city: { type: 'string' } }, required: ['city'] } },
];
const levelTools = [
  { name: 'set_level', parameters: { type: 'dict', properties: { level: { type: 'integer' } }, required: ['level'] } },
];
const tagTools = (uniqueItems: boolean) => [
  {
    name: 'tag',
    parameters: { type: 'dict', properties: { tags: { type: 'array', items: { type: 'string' }, uniqueItems } } },
  },
];

let server: RewardServer;
beforeAll(async () => {
  server = await startRewardServer({ mode: 'exact' });
});
afterAll(() => server.close());

async function post(body: string): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${server.url}${REWARD_SCORE_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: response.status, json: await response.json() };
}

async function score(request: object): Promise<RewardResponse> {
  const { status, json } = await post(JSON.stringify(request));
  expect(status, JSON.stringify(json)).toBe(200);
  return RewardResponse.parse(json);
}

async function refusal(body: string, status: number): Promise<RewardErrorResponse['error']> {
  const response = await post(body);
  expect(response.status).toBe(status);
  return RewardErrorResponse.parse(response.json).error;
}

describe('the reward server (services/reward-server.ts)', () => {
  test('listens on 127.0.0.1 and answers /health with its mode', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await fetch(`${server.url}/health`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok', mode: 'exact' });
  });

  test("scores in the server's mode unless the batch names its own", async () => {
    // BFCL normalises strings (case, punctuation); LoopTool's exact match does not.
    const item = {
      completion: call('get_weather', '{"city": "PARIS"}'),
      ground_truth: call('get_weather', '{"city": "Paris"}'),
      tools: JSON.stringify(weatherTools),
    };
    expect(await score({ items: [item] })).toEqual({ mode: 'exact', scores: [0], errors: ['exact_match:no_match'] });
    expect(await score({ mode: 'bfcl_ast', items: [item] })).toEqual({ mode: 'bfcl_ast', scores: [1], errors: [null] });
  });

  test('a label or tools that do not read score 0 with the reason, and the rest of the batch is scored', async () => {
    const label = call('get_weather', '{"city": "Paris"}');
    const tools = JSON.stringify(weatherTools);
    const response = await score({
      items: [
        { completion: label, ground_truth: label, tools },
        { completion: label, ground_truth: '<tool_call>\n{"name": "get_weather"\n</tool_call>', tools },
        { completion: label, ground_truth: label, tools: '{"name": "get_weather"}' },
        {
          completion: label,
          ground_truth: label,
          tools: [{ type: 'function', function: { name: 'x', parameters: 3 } }],
        },
        { completion: label, ground_truth: label, tools },
      ],
    });
    expect(response.scores).toEqual([1, 0, 0, 0, 1]);
    expect(response.errors[0]).toBeNull();
    expect(response.errors[1]).toMatch(/^ground_truth: /);
    expect(response.errors[2]).toBe('tools: must be an array of tools');
    expect(response.errors[3]).toMatch(/^tools\[0\]\.function\.parameters: /);
    expect(response.errors[4]).toBeNull();
    // bfcl_ast cannot type a call whose tool the item does not offer: a reason, not a crash.
    const untyped = await score({ mode: 'bfcl_ast', items: [{ completion: label, ground_truth: label }] });
    expect(untyped.scores).toEqual([0]);
    expect(untyped.errors[0]).toMatch(/^ground_truth: .*get_weather/);
  });

  test('one label with different tools in one batch is judged by each its own tools', async () => {
    const label = call('tag', '{"tags": ["x", "y"]}');
    const reordered = call('tag', '{"tags": ["y", "x"]}');
    const response = await score({
      items: [
        { completion: reordered, ground_truth: label, tools: JSON.stringify(tagTools(false)) },
        { completion: reordered, ground_truth: label, tools: JSON.stringify(tagTools(true)) },
        { completion: reordered, ground_truth: label, tools: tagTools(false) },
        { completion: reordered, ground_truth: label, tools: tagTools(true) },
        { completion: reordered, ground_truth: label, tools: JSON.stringify(tagTools(false)) },
      ],
    });
    expect(response.scores).toEqual([0, 1, 0, 1, 0]);
  });

  test('numbers in message completions keep their int/float type', async () => {
    const label = call('set_level', '{"level": 5}');
    // Written by hand: JSON.stringify cannot write 5.0, which is the point (Python's json.dumps does).
    const asMessage = (args: string) =>
      `{"tool_calls": [{"type": "function", "function": {"name": "set_level", "arguments": ${args}}}]}`;
    const body = `{"mode": "bfcl_ast", "items": [
      {"completion": ${asMessage('{"level": 5.0}')}, "ground_truth": ${JSON.stringify(label)}, "tools": ${JSON.stringify(JSON.stringify(levelTools))}},
      {"completion": ${asMessage('{"level": 5}')}, "ground_truth": ${JSON.stringify(label)}, "tools": ${JSON.stringify(JSON.stringify(levelTools))}},
      {"completion": ${asMessage(JSON.stringify('{"level": 5.0}'))}, "ground_truth": ${JSON.stringify(label)}, "tools": ${JSON.stringify(JSON.stringify(levelTools))}}
    ]}`;
    const { status, json } = await post(body);
    expect(status).toBe(200);
    const response = RewardResponse.parse(json);
    // BFCL: a float for an integer parameter is a type error, in an object or in JSON-text arguments alike.
    expect(response.scores).toEqual([0, 1, 0]);
    expect(response.errors[0]).toBe('type_error:simple');
  });

  test('a malformed request is refused with the field at fault', async () => {
    const notJson = await refusal('{"items": [', 400);
    expect(notJson.message).toMatch(/^request body is not JSON: line 1 column 12: /);

    const items = [
      { completion: 'a', ground_truth: 'b' },
      { completion: 'a', ground_truth: 'b' },
      { completion: 'a', ground_truth: 'b' },
      { completion: 'a', ground_truth: 7 },
      { completion: 'a' },
    ];
    const invalid = await refusal(JSON.stringify({ items }), 422);
    expect(invalid.message).toMatch(/^invalid reward request: items\[3\]\.ground_truth: .* \(and 1 more\)$/);
    expect(invalid.problems).toHaveLength(2);
    expect(invalid.problems[1]).toMatch(/^items\[4\]\.ground_truth: /);

    const mode = await refusal(JSON.stringify({ mode: 'fuzzy', items: [] }), 422);
    expect(mode.message).toMatch(/^invalid reward request: mode: .*exact.*bfcl_ast/);
    expect((await refusal('[]', 422)).message).toMatch(/^invalid reward request: \(request\): /);
  });

  test('other routes and methods are refused', async () => {
    expect((await fetch(`${server.url}${REWARD_SCORE_PATH}`)).status).toBe(405);
    const missing = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: '{}' });
    expect(missing.status).toBe(404);
    expect(RewardErrorResponse.parse(await missing.json()).error.message).toContain(`POST ${REWARD_SCORE_PATH}`);
  });

  test('an empty batch scores nothing', async () => {
    expect(await score({ items: [] })).toEqual({ mode: 'exact', scores: [], errors: [] });
  });
});
