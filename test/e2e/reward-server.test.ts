import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { REWARD_SCORE_PATH, RewardResponse } from '../../core/reward.js';
import type { RewardMode } from '../../core/vocabulary.js';
import { projectPath } from '../../services/paths.js';
import { LOOPTOOL_BIN } from '../helpers/cli.js';
import {
  bfclRewardCases,
  coreScore,
  edgeRewardCases,
  toolCallReply,
  type RewardCase,
} from '../helpers/reward-cases.js';

const REWARD_DIR = projectPath('recipes', 'reward');
const WITH_REWARD_SERVER = path.join(REWARD_DIR, 'with-reward-server.sh');
const CASES_SCRIPT = projectPath('test', 'fixtures', 'reward_cases.py');
const SERVER_MODE: RewardMode = 'bfcl_ast';

const scratch = mkdtempSync(path.join(os.tmpdir(), 'reward-server-'));

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment a trainer would have, without this machine's reward settings. */
function trainerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { LOOPTOOL_REWARD_URL: _url, LOOPTOOL_REWARD_MODE: _mode, ...env } = process.env;
  return { ...env, ...extra };
}

function started(command: string, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  child.stdout.on('data', (chunk) => (output.stdout += chunk));
  child.stderr.on('data', (chunk) => (output.stderr += chunk));
  const finished = new Promise<Finished>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, ...output }));
  });
  return { child, output, finished };
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Finished> {
  return started(command, args, env).finished;
}

async function until(condition: () => boolean, what: string, describeState: () => string = () => ''): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${what} did not happen: ${describeState()}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Python run the way a trainer runs the reward module: imported from recipes/reward/. */
function python(code: string, env: NodeJS.ProcessEnv): Promise<Finished> {
  return run('python3', ['-c', `import sys\nsys.path.insert(0, ${JSON.stringify(REWARD_DIR)})\n${code}`], env);
}

let server: ReturnType<typeof started> | undefined;
let url = '';

beforeAll(async () => {
  const ready = path.join(scratch, 'server.url');
  server = started(
    process.execPath,
    [LOOPTOOL_BIN, 'reward', 'serve', '--mode', SERVER_MODE, '--port', '0', '--ready-file', ready],
    trainerEnv(),
  );
  const { output } = server;
  await until(
    () => existsSync(ready) || server?.child.exitCode !== null,
    'the reward server listening',
    () => output.stderr,
  );
  url = readFileSync(ready, 'utf8').trim();
  expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
});

afterAll(async () => {
  if (server && server.child.exitCode === null) {
    server.child.kill('SIGTERM');
    const stopped = await server.finished;
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toContain(`Reward server: ${url} (mode ${SERVER_MODE};`);
    expect(stopped.stdout).toContain('Reward server stopped.');
  }
  rmSync(scratch, { recursive: true, force: true });
});

interface SettingScores {
  batch: number[];
  trl: number[];
  trl_tool_calls: Record<string, number>;
  naive: Record<string, number>;
}

describe('looptool reward serve, called by the Python reward functions', () => {
  test("the reward equals core/'s verdict on every BFCL fixture and the int/float, duplicate and order cases, in both modes", async () => {
    const edge = edgeRewardCases();
    const cases: RewardCase[] = [...edge, ...bfclRewardCases()];
    const file = path.join(scratch, 'cases.jsonl');
    writeFileSync(file, cases.map((c) => JSON.stringify(c)).join('\n'));
    const every = 17;
    const scored = await run('python3', [CASES_SCRIPT, file, String(every)], trainerEnv({ LOOPTOOL_REWARD_URL: url }));
    expect(scored.code, scored.stderr).toBe(0);
    const results = JSON.parse(scored.stdout) as Record<'server' | RewardMode, SettingScores>;

    const verdicts: Record<RewardMode, number[]> = { exact: [], bfcl_ast: [] };
    for (const mode of ['exact', 'bfcl_ast'] as const)
      verdicts[mode] = cases.map((c) =>
        coreScore({ reply: c.completion, ground_truth: c.ground_truth, tools: c.tools }, mode),
      );
    for (const setting of ['server', 'exact', 'bfcl_ast'] as const) {
      const mode = setting === 'server' ? SERVER_MODE : setting;
      const expected = verdicts[mode];
      const got = results[setting];
      const differences = (entry: string, scores: Record<number, number> | number[], verdict: (i: number) => number) =>
        Object.entries(scores).flatMap(([index, score]) => {
          const i = Number(index);
          return score === verdict(i)
            ? []
            : [`${setting} ${entry} ${cases[i]?.name}: python ${score}, core ${verdict(i)}`];
        });
      const fromLabel = (i: number) => expected[i] as number;
      const fromToolCalls = (i: number) => {
        const c = cases[i] as RewardCase;
        return coreScore(
          { reply: toolCallReply(c.toolCallMessages as string), ground_truth: c.ground_truth, tools: c.tools },
          mode,
        );
      };
      expect(got.batch).toHaveLength(cases.length);
      expect(got.trl).toHaveLength(cases.length);
      expect(Object.keys(got.naive)).toHaveLength(Math.ceil(cases.length / every));
      expect(Object.keys(got.trl_tool_calls)).toHaveLength(cases.filter((c) => c.toolCallMessages).length);
      expect([
        ...differences('verl batch', got.batch, fromLabel),
        ...differences('trl', got.trl, fromLabel),
        ...differences('verl naive', got.naive, fromLabel),
        ...differences('trl tool_calls', got.trl_tool_calls, fromToolCalls),
      ]).toEqual([]);
    }

    // The comparison means something: both verdicts occur, the modes disagree where BFCL normalises strings, and the
    // cases the old Python reward got wrong come out as core/ decides them.
    for (const mode of ['exact', 'bfcl_ast'] as const) {
      expect(verdicts[mode].filter((score) => score === 1).length).toBeGreaterThan(1000);
      expect(verdicts[mode].filter((score) => score === 0).length).toBeGreaterThan(1000);
    }
    const named = (name: string, mode: RewardMode) => results[mode].batch[cases.findIndex((c) => c.name === name)];
    expect(
      cases.some((c, i) => c.name.endsWith('string upper-cased') && verdicts.exact[i] !== verdicts.bfcl_ast[i]),
    ).toBe(true);
    expect(named('integer: label 5, reply 5.0', 'exact')).toBe(1);
    expect(named('float: label 5.0, reply 5', 'exact')).toBe(1);
    expect(named('integer: label 5, reply true', 'exact')).toBe(0);
    expect(named('duplicates: label [A, A, B], reply [A, B, B]', 'exact')).toBe(0);
    expect(named('duplicates: label [A, A, B], reply [A, B, B]', 'bfcl_ast')).toBe(0);
    expect(named('duplicates: label [A, A, B], reply [B, A, A]', 'exact')).toBe(1);
    expect(named('ordered list: label [x, y], reply [y, x]', 'exact')).toBe(0);
    expect(named('uniqueItems: label [x, y], reply [y, x]', 'exact')).toBe(1);
    expect(edge.length).toBeGreaterThan(20);
  });

  test('a malformed item scores 0 with its error and the rest of its batch is scored; a malformed batch is refused by field', async () => {
    const label = '<tool_call>\n{"name": "f", "arguments": {"x": 1}}\n</tool_call>';
    const tools = '[{"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "integer"}}}}]';
    const items = [
      { completion: label, ground_truth: label, tools },
      { completion: label, ground_truth: '<tool_call>\n{"name": "f", "arguments": \n</tool_call>', tools },
      { completion: label, ground_truth: label, tools: '[{"name": "f"' },
      { completion: label, ground_truth: label, tools },
    ];
    const response = await fetch(`${url}${REWARD_SCORE_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ items }),
    });
    expect(response.status).toBe(200);
    const body = RewardResponse.parse(await response.json());
    expect(body.mode).toBe(SERVER_MODE);
    expect(body.scores).toEqual([1, 0, 0, 1]);
    expect(body.errors[0]).toBeNull();
    expect(body.errors[1]).toMatch(/^ground_truth: /);
    expect(body.errors[2]).toMatch(/^tools: is a string that is not JSON/);

    const env = trainerEnv({ LOOPTOOL_REWARD_URL: url });
    const batch = await python(
      `import json, looptool_reward\nitems = json.loads(${JSON.stringify(JSON.stringify(items))})\nprint(json.dumps(looptool_reward.compute_score_batch(["looptool"] * 4, [i["completion"] for i in items], [i["ground_truth"] for i in items], [{"tools": i["tools"]} for i in items])))`,
      env,
    );
    expect(batch.code, batch.stderr).toBe(0);
    expect(JSON.parse(batch.stdout)).toEqual([1, 0, 0, 1]);

    const refused = await python(
      `import looptool_reward\ntry:\n    looptool_reward.compute_score_batch(["a", "b"], ["x", "y"], ["x", None], None)\nexcept looptool_reward.RewardServerError as err:\n    print(err)`,
      env,
    );
    expect(refused.code, refused.stderr).toBe(0);
    expect(refused.stdout).toMatch(/answered 422: invalid reward request: items\[1\]\.ground_truth: /);
  });
});

describe('recipes/reward/with-reward-server.sh', () => {
  function writeSpec(name: string, reward: { mode: RewardMode; url?: string }): string {
    const file = path.join(scratch, name);
    // Only `reward` is read here; the rest of the job spec is the recipe's business.
    writeFileSync(file, JSON.stringify({ jobKey: 'loop-iter-1', reward }));
    return file;
  }

  const REPORT =
    'import json, os, looptool_reward\n' +
    'score = looptool_reward.compute_score("looptool", "<tool_call>\\n{\\"name\\": \\"f\\", \\"arguments\\": {\\"x\\": 5.0}}\\n</tool_call>", "<tool_call>\\n{\\"name\\": \\"f\\", \\"arguments\\": {\\"x\\": 5}}\\n</tool_call>")\n' +
    'print(json.dumps({"url": os.environ["LOOPTOOL_REWARD_URL"], "mode": os.environ["LOOPTOOL_REWARD_MODE"], "score": score}))\n' +
    'sys.exit(3)';

  test("starts a reward server for the command with the spec's mode, passes the exit status through, stops it after", async () => {
    const spec = writeSpec('spec-exact.json', { mode: 'exact' });
    const result = await run(
      'bash',
      [
        WITH_REWARD_SERVER,
        spec,
        '--',
        'python3',
        '-c',
        `import sys\nsys.path.insert(0, ${JSON.stringify(REWARD_DIR)})\n${REPORT}`,
      ],
      trainerEnv(),
    );
    expect(result.code, result.stderr).toBe(3);
    const report = JSON.parse(result.stdout) as { url: string; mode: string; score: number };
    expect(report.mode).toBe('exact');
    expect(report.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(report.url).not.toBe(url);
    // Exact mode: 5.0 for 5 is right (the old Python reward said wrong).
    expect(report.score).toBe(1);
    expect(result.stderr).toContain(`Reward server: ${report.url} (mode exact;`);
    await expect(fetch(`${report.url}/health`)).rejects.toThrow();
  });

  test("uses the spec's reward.url, or LOOPTOOL_REWARD_URL, instead of starting a server", async () => {
    const printEnv = 'import os; print(os.environ["LOOPTOOL_REWARD_URL"], os.environ["LOOPTOOL_REWARD_MODE"])';
    const fromSpec = await run(
      'bash',
      [WITH_REWARD_SERVER, writeSpec('spec-url.json', { mode: 'bfcl_ast', url }), '--', 'python3', '-c', printEnv],
      trainerEnv(),
    );
    expect(fromSpec.code, fromSpec.stderr).toBe(0);
    expect(fromSpec.stdout.trim()).toBe(`${url} bfcl_ast`);
    expect(fromSpec.stderr).not.toContain('Reward server');

    const fromEnv = await run(
      'bash',
      [WITH_REWARD_SERVER, writeSpec('spec-env.json', { mode: 'exact' }), '--', 'python3', '-c', printEnv],
      trainerEnv({ LOOPTOOL_REWARD_URL: url }),
    );
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    expect(fromEnv.stdout.trim()).toBe(`${url} exact`);
  });

  test('SIGTERM to the launcher stops the command and the reward server', async () => {
    const spec = writeSpec('spec-term.json', { mode: 'exact' });
    const sleeper =
      'import json, os, time\nprint(json.dumps({"url": os.environ["LOOPTOOL_REWARD_URL"], "pid": os.getpid()}), flush=True)\ntime.sleep(300)';
    const launcher = started('bash', [WITH_REWARD_SERVER, spec, '--', 'python3', '-c', sleeper], trainerEnv());
    await until(
      () => launcher.output.stdout.includes('\n'),
      'the command starting',
      () => launcher.output.stderr,
    );
    const { url: childUrl, pid } = JSON.parse(launcher.output.stdout) as { url: string; pid: number };
    expect((await fetch(`${childUrl}/health`)).status).toBe(200);
    launcher.child.kill('SIGTERM');
    const ended = await launcher.finished;
    expect(ended.code).toBe(143);
    expect(isRunning(pid)).toBe(false);
    await expect(fetch(`${childUrl}/health`)).rejects.toThrow();
  });

  test('a spec without reward.mode is refused with the reason, before anything starts', async () => {
    const spec = path.join(scratch, 'spec-bad.json');
    writeFileSync(spec, JSON.stringify({ jobKey: 'x' }));
    const result = await run('bash', [WITH_REWARD_SERVER, spec, '--', 'true'], trainerEnv());
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`cannot read reward.mode from ${spec}: KeyError: 'reward'`);
  });
});
