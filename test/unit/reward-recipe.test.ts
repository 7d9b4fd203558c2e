import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectPath } from '../../services/paths.js';
import { startRewardServer, type RewardServer } from '../../services/reward-server.js';
import { freePort } from '../helpers/ports.js';

const REWARD_DIR = projectPath('recipes', 'reward');

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs Python that imports recipes/reward/looptool_reward.py, as a trainer does. Asynchronous, so the reward server in
 * this process keeps answering; `onLine` sees each stdout line as it comes.
 */
function python(code: string, env: Record<string, string>, onLine?: (line: string) => void): Promise<Finished> {
  const { LOOPTOOL_REWARD_URL: _url, LOOPTOOL_REWARD_MODE: _mode, ...inherited } = process.env;
  const script = `import json, sys\nsys.path.insert(0, ${JSON.stringify(REWARD_DIR)})\nimport looptool_reward as reward\n${code}`;
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', script], {
      env: { ...inherited, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const before = stdout.length;
      stdout += chunk;
      if (onLine) for (const line of stdout.slice(before).split('\n')) if (line) onLine(line);
    });
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function pythonJson(code: string, env: Record<string, string>): Promise<unknown> {
  const result = await python(code, env);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout);
}

const call = (name: string, args: object) => `<tool_call>\n${JSON.stringify({ name, arguments: args })}\n</tool_call>`;
const TOOLS = JSON.stringify([
  {
    type: 'function',
    function: {
      name: 'f',
      parameters: {
        type: 'object',
        properties: { x: { type: 'integer' }, tags: { type: 'array', items: { type: 'string' } } },
      },
    },
  },
  { type: 'function', function: { name: 'g', parameters: { type: 'object', properties: { y: { type: 'boolean' } } } } },
]);
const A = call('f', { x: 1, tags: ['a', 'b'] });
const B = call('g', { y: true });

let server: RewardServer;
let env: Record<string, string>;
beforeAll(async () => {
  server = await startRewardServer({ mode: 'exact' });
  env = { LOOPTOOL_REWARD_URL: server.url };
});
afterAll(() => server.close());

describe('recipes/reward/looptool_reward.py (the GRPO reward, scored by the reward server)', () => {
  test("verl's naive entry point: multiset of calls, duplicates counted, list order kept, <think> ignored, 5.0 = 5", async () => {
    const pairs: [string, string][] = [
      [`${B}\n${A}`, `${A}\n${B}`],
      [`${A}\n${A}\n${B}`, `${A}\n${B}\n${B}`],
      [call('f', { x: 1, tags: ['b', 'a'] }), A],
      [call('g', { y: 1 }), B],
      [`<think>${A}</think>I cannot help.`, 'I cannot help with that.'],
      ['<tool_call>{broken</tool_call>', A],
      [call('f', { tags: ['a', 'b'], x: 1 }), A],
      ['<tool_call>\n{"name": "f", "arguments": {"x": 1.0, "tags": ["a", "b"]}}\n</tool_call>', A],
    ];
    const scores = await pythonJson(
      `pairs = json.loads(${JSON.stringify(JSON.stringify(pairs))})\nprint(json.dumps([reward.compute_score("looptool", r, g, {"tools": ${JSON.stringify(TOOLS)}}) for r, g in pairs]))`,
      env,
    );
    expect(scores).toEqual([1, 0, 0, 0, 1, 0, 1, 1]);
  });

  test("verl's batch entry point takes verl's columns (extra_info may be missing) and splits big batches in order", async () => {
    const result = await pythonJson(
      [
        'calls = []',
        'post = reward._post',
        'reward._post = lambda endpoint, payload: calls.append(len(payload["items"])) or post(endpoint, payload)',
        'reward.CHUNK_SIZE = 3',
        `A, B = ${JSON.stringify(A)}, ${JSON.stringify(B)}`,
        'replies = [A if i % 3 else B for i in range(10)]',
        `scores = reward.compute_score_batch(["looptool"] * 10, replies, [A] * 10, [{"tools": ${JSON.stringify(TOOLS)}}] * 9 + [None])`,
        'print(json.dumps({"scores": scores, "calls": calls, "empty": reward.compute_score_batch([], [], [], [])}))',
      ].join('\n'),
      // A cluster's proxy settings must not take the reward's requests elsewhere (nothing listens on port 9).
      { ...env, http_proxy: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9' },
    );
    expect(result).toEqual({ scores: [0, 1, 1, 0, 1, 1, 0, 1, 1, 0], calls: [3, 3, 3, 1], empty: [] });
  });

  test("TRL's entry point: text or conversational completions, tool_calls messages, tools as text, a list or absent", async () => {
    const scores = await pythonJson(
      [
        `A, B, TOOLS = ${JSON.stringify(A)}, ${JSON.stringify(B)}, ${JSON.stringify(TOOLS)}`,
        'tool_call = lambda args: [{"role": "assistant", "content": None, "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": args}}]}]',
        'completions = [A, [{"role": "assistant", "content": A}], tool_call({"x": 1, "tags": ["a", "b"]}),',
        '    tool_call(json.dumps({"x": 1, "tags": ["a", "b"]})), tool_call({"x": 2, "tags": ["a", "b"]}), [{"role": "assistant", "content": B}], B]',
        'tools = [TOOLS, json.loads(TOOLS), TOOLS, TOOLS, TOOLS, None, TOOLS]',
        'print(json.dumps(reward.trl_reward(completions, ground_truth=[A] * 6 + [B], tools=tools, prompts=["p"] * 7, trainer_state=None)))',
      ].join('\n'),
      env,
    );
    expect(scores).toEqual([1, 1, 1, 1, 0, 0, 1]);
  });

  test('LOOPTOOL_REWARD_MODE picks the mode per call; unset, the server decides', async () => {
    const code = [
      `reply, label = ${JSON.stringify(call('f', { tags: ['A', 'B'], x: 1 }))}, ${JSON.stringify(A)}`,
      `print(json.dumps(reward.compute_score("looptool", reply, label, {"tools": ${JSON.stringify(TOOLS)}})))`,
    ].join('\n');
    // BFCL's checker normalises string case; exact match does not. The server's own mode is exact.
    expect(await pythonJson(code, env)).toBe(0);
    expect(await pythonJson(code, { ...env, LOOPTOOL_REWARD_MODE: 'bfcl_ast' })).toBe(1);
    expect(await pythonJson(code, { ...env, LOOPTOOL_REWARD_MODE: 'exact' })).toBe(0);
  });

  test('a missing URL, a refused batch and mismatched columns fail with a clear message', async () => {
    const report = (code: string) =>
      `try:\n    ${code}\nexcept (reward.RewardServerError, ValueError) as err:\n    print(err)`;
    const unset = await python(report('reward.compute_score("d", "a", "b")'), {});
    expect(unset.stdout).toContain('LOOPTOOL_REWARD_URL is not set');
    const refused = await python(report('reward.compute_score("d", "a", "b")'), {
      ...env,
      LOOPTOOL_REWARD_MODE: 'fuzzy',
    });
    expect(refused.stdout).toMatch(/answered 422: invalid reward request: mode: /);
    const mismatched = await python(report('reward.trl_reward(["a", "b"], ground_truth=["a"])'), env);
    expect(mismatched.stdout).toContain('completions (2) and ground_truth (1) differ in length');
  });

  test('a refused connection is retried while the server starts', async () => {
    const port = await freePort();
    let starting: Promise<RewardServer> | undefined;
    // Each refused attempt is reported before it is retried; the server starts only after the first one.
    const code = [
      'class Reporting:',
      '    def __init__(self, opener):',
      '        self.opener = opener',
      '    def open(self, *args, **kwargs):',
      '        try:',
      '            return self.opener.open(*args, **kwargs)',
      '        except OSError:',
      '            print("refused", flush=True)',
      '            raise',
      'reward._OPENER = Reporting(reward._OPENER)',
      `print(json.dumps(reward.compute_score("d", ${JSON.stringify(A)}, ${JSON.stringify(A)})))`,
    ].join('\n');
    try {
      const result = await python(code, { LOOPTOOL_REWARD_URL: `http://127.0.0.1:${port}` }, (line) => {
        if (line === 'refused') starting ??= startRewardServer({ mode: 'exact', port });
      });
      expect(result.code, result.stderr).toBe(0);
      const lines = result.stdout.trim().split('\n');
      expect(lines[0]).toBe('refused');
      expect(lines.at(-1)).toBe('1.0');
    } finally {
      await (await starting)?.close();
    }
  });

  test('a server that never comes is reported with its address once the retries are spent', async () => {
    const port = await freePort();
    const result = await python(
      `reward.CONNECT_ATTEMPTS, reward.CONNECT_DELAY_SECONDS = 2, 0.01\ntry:\n    reward.compute_score("d", "a", "b")\nexcept reward.RewardServerError as err:\n    print(err)`,
      { LOOPTOOL_REWARD_URL: `http://127.0.0.1:${port}/` },
    );
    expect(result.stdout).toContain(`cannot reach the reward server at http://127.0.0.1:${port}/v1/score`);
  });
});
