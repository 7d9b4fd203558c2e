import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { LoopConfigError, loadLoopConfig } from '../../client/config-file.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'looptool-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};

const valid = `name: my-loop
data:
  seedDataset: seed
models:
  policy: { baseUrls: ["http://vllm:8000/v1"], model: Qwen/Qwen3-8B }
  judge: { baseUrls: ["http://judge:8000/v1"], model: Qwen/Qwen3-32B }
  generator: { baseUrls: ["http://judge:8000/v1"], model: Qwen/Qwen3-32B }
training:
  backend: sim
  url: http://sim:8010
`;

describe('loop config files', () => {
  test('fill the paper defaults and hash the parsed config', () => {
    const { config, configHash } = loadLoopConfig(write('ok.yaml', valid));
    expect(config).toMatchObject({
      iterations: 4,
      reward: 'exact',
      judge: { votes: 3 },
      expand: { k: 4, validate: true },
      data: { seedNewFraction: 0.3077, seedNewDecay: 0.5 },
      training: {
        backend: 'sim',
        grpo: { groupSize: 16, learningRate: 1e-6, clipLow: 0.2, clipHigh: 0.28, epochs: 2 },
      },
    });
    expect(configHash).toMatch(/^[0-9a-f]{64}$/);
    expect(loadLoopConfig(write('ok2.yaml', valid)).configHash).toBe(configHash);
  });

  test('list every problem with its path and line before anything starts', () => {
    const file = write(
      'bad.yaml',
      valid.replace('http://judge:8000/v1"], model: Qwen/Qwen3-32B }', 'not a url"], model: "" }') + 'iterations: 0\n',
    );
    let error: LoopConfigError | undefined;
    try {
      loadLoopConfig(file);
    } catch (err) {
      error = err as LoopConfigError;
    }
    expect(error).toBeInstanceOf(LoopConfigError);
    const problems = error!.problems.join('\n');
    expect(problems).toMatch(/models\.judge\.baseUrls\[0\]: .*\(line 6\)/);
    expect(problems).toMatch(/models\.judge\.model: .*\(line 6\)/);
    expect(problems).toMatch(/iterations: .*\(line 11\)/);
    expect(error!.message).toContain(file);
  });

  test('a YAML syntax error names its line', () => {
    expect(() => loadLoopConfig(write('broken.yaml', 'name: x\ndata: [unclosed\n'))).toThrow(/line \d+/);
  });
});
