import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { LoopConfigError, loadLoopConfig } from '../../client/config-file.js';
import { LoopConfig, loopConfigProblems } from '../../core/config.js';

const BAD = fileURLToPath(new URL('../fixtures/bad/', import.meta.url));

/**
 * Every bad config of test/fixtures/bad/ and the problems it must be refused with, in file order: each names the path
 * into the config, what is wrong, and the line. Before configs were strict, the unknown keys passed silently (the
 * loop ran its defaults).
 */
export const BAD_CONFIGS: Record<string, RegExp[]> = {
  'config-unknown-key.yaml': [/^iteration: unknown key \(did you mean `iterations`\?\) \(line 3\)$/],
  'config-unknown-nested.yaml': [
    /^data\.seed_dataset: unknown key \(did you mean `seedDataset`\?\) \(line 4\)$/,
    /^models\.policy\.maxConcurency: unknown key \(did you mean `maxConcurrency`\?\) \(line 7\)$/,
    /^training\.grpo\.group_size: unknown key \(did you mean `groupSize`\?\) \(line 14\)$/,
    /^judge\.vote: unknown key \(did you mean `votes`\?\) \(line 16\)$/,
  ],
  'config-wrong-types.yaml': [
    /^iterations: .*expected number, received string \(line 2\)$/,
    /^probe\.batchSize: .*expected number, received boolean \(line 4\)$/,
    /^expand\.validate: .*expected boolean, received string \(line 6\)$/,
    /^models\.judge\.baseUrls: .*expected array, received string \(line 11\)$/,
    /^models\.generator\.model: .*expected string, received number \(line 12\)$/,
  ],
  'config-negative.yaml': [
    /^iterations: Too small: expected number to be >0 \(line 2\)$/,
    /^data\.initialSize: Too small: expected number to be >0 \(line 5\)$/,
    /^expand\.k: Too small: expected number to be >0 \(line 7\)$/,
    /^judge\.voteTemperature: Too small: expected number to be >=0 \(line 9\)$/,
    /^concurrency\.batches: Too small: expected number to be >0 \(line 11\)$/,
  ],
  'config-bad-yaml.yaml': [/^line 4: Flow sequence in block collection must be sufficiently indented/],
  'config-duplicate-key.yaml': [/^line 12: Map keys must be unique/],
  'config-not-a-mapping.yaml': [/^line 1: the config must be a mapping of keys/],
  'config-bad-name.yaml': [/^name: lowercase letters, digits, "\.", "_" and "-", starting with .* \(line 1\)$/],
  'config-unknown-backend.yaml': [
    /^training\.url: unknown key \(known keys here: backend, command, workDir, .*\) \(line 12\)$/,
  ],
  'config-invalid-utf8.yaml': [/^line 4: invalid UTF-8 at byte 53 of the file$/],
};

function problemsOf(file: string): string[] {
  try {
    loadLoopConfig(file);
  } catch (err) {
    expect(err).toBeInstanceOf(LoopConfigError);
    expect((err as Error).message.startsWith(`${file}: invalid loop config:`)).toBe(true);
    return (err as LoopConfigError).problems;
  }
  throw new Error(`${file} was accepted`);
}

describe('bad loop configs (test/fixtures/bad/config-*.yaml)', () => {
  test.each(Object.entries(BAD_CONFIGS))('%s is refused with each problem located', (name, expected) => {
    const problems = problemsOf(`${BAD}${name}`);
    expect(problems).toHaveLength(expected.length);
    problems.forEach((problem, i) => expect(problem).toMatch(expected[i]!));
  });

  test('every config fixture is in the table above, except the valid one the CLI test uses', () => {
    const files = readdirSync(BAD).filter((f) => f.startsWith('config-'));
    expect(files.filter((f) => !(f in BAD_CONFIGS)).sort()).toEqual(['config-missing-seed.yaml']);
    expect(() => loadLoopConfig(`${BAD}config-missing-seed.yaml`)).not.toThrow();
  });

  test('strict everywhere: an unknown key in any nested object, and in each training backend, is refused', () => {
    const base = {
      data: { seedDataset: 'seed' },
      models: { policy: { model: 'p' }, judge: { model: 'j' }, generator: { model: 'g' } },
      training: { backend: 'sim', url: 'http://sim:8010' },
    };
    const withExtra = (path: string[], extra: Record<string, unknown>) => {
      const config = structuredClone(base) as Record<string, unknown>;
      let node = config;
      for (const key of path) node = (node[key] ??= {}) as Record<string, unknown>;
      Object.assign(node, extra);
      return config;
    };
    const cases: [string[], string][] = [
      [[], 'extra'],
      [['data'], 'extra'],
      [['models'], 'critic'],
      [['models', 'judge'], 'extra'],
      [['training'], 'extra'],
      [['training', 'grpo'], 'extra'],
      [['training', 'lora'], 'extra'],
      [['deploy'], 'extra'],
      [['probe'], 'extra'],
      [['judge'], 'extra'],
      [['expand'], 'extra'],
      [['evaluation'], 'extra'],
      [['timeouts'], 'extra'],
      [['concurrency'], 'extra'],
    ];
    for (const [path, key] of cases) {
      const parsed = LoopConfig.safeParse(withExtra(path, { [key]: 1 }));
      expect(parsed.success, path.join('.')).toBe(false);
      const problems = loopConfigProblems(parsed.error!);
      expect(problems).toHaveLength(1);
      expect(problems[0]!.startsWith(`${[...path, key].join('.')}: unknown key (known keys here: `), problems[0]).toBe(
        true,
      );
    }
    for (const training of [
      { backend: 'local', command: ['x'], workDir: '/w' },
      { backend: 'slurm', command: ['x'], workDir: '/w' },
      { backend: 'ray', address: 'http://ray:8265', command: ['x'], workDir: '/w' },
      { backend: 'kubernetes', image: 'i', command: ['x'], workDir: '/w' },
    ]) {
      expect(LoopConfig.safeParse({ ...base, training }).success, training.backend).toBe(true);
      const parsed = LoopConfig.safeParse({ ...base, training: { ...training, stallTimeoutSecond: 5 } });
      expect(loopConfigProblems(parsed.error!, { ...base, training: { ...training, stallTimeoutSecond: 5 } })).toEqual([
        'training.stallTimeoutSecond: unknown key (did you mean `stallTimeoutSeconds`?)',
      ]);
    }
    // Ray's runtime_env is Ray's to define and passed as is: it stays open.
    expect(
      LoopConfig.safeParse({
        ...base,
        training: {
          backend: 'ray',
          address: 'http://ray:8265',
          command: ['x'],
          workDir: '/w',
          runtimeEnv: { pip: ['x'] },
        },
      }).success,
    ).toBe(true);
  });

  test('a parsed config parses again unchanged (the workflow re-parses what the client sent)', () => {
    const { config } = loadLoopConfig(fileURLToPath(new URL('../../deploy/loop.example.yaml', import.meta.url)));
    expect(LoopConfig.parse(JSON.parse(JSON.stringify(config)))).toEqual(config);
  });
});
