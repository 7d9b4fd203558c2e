import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { taskQueues } from '../../core/constants.js';
import { DEFAULT_DATA_DIR } from '../../services/paths.js';
import { loadSharedSettings } from '../../services/settings.js';
import { ConfigError, loadWorkerConfig, WorkerEnvSchema } from '../../worker/config.js';

describe('loadWorkerConfig', () => {
  test('an empty environment gives the embedded default', () => {
    expect(loadWorkerConfig({})).toEqual({
      dataDir: DEFAULT_DATA_DIR,
      temporalPort: 7233,
      temporalUiPort: 8233,
      postgresPort: 54329,
      temporal: { address: '127.0.0.1:7233', namespace: 'default', external: false },
      database: { url: 'postgres://postgres@127.0.0.1:54329/looptool', external: false },
      queueSuffix: '',
      queues: taskQueues(),
      serve: ['control', 'llm', 'gpu'],
      defaultBaseUrls: {},
      apiKeys: {},
      artifactsDir: `${DEFAULT_DATA_DIR}/artifacts`,
      llmConcurrency: 16,
      gpuConcurrency: 1,
      gpuPools: [],
      migrateOnStart: true,
      shutdownGraceSeconds: 30,
    });
  });

  test('honours the side-by-side settings every looptool process shares, exactly as the CLI reads them', () => {
    const env = {
      LOOPTOOL_PG_PORT: '55001',
      LOOPTOOL_TEMPORAL_PORT: '17233',
      LOOPTOOL_DATA_DIR: '/srv/looptool-b',
      LOOPTOOL_TASK_QUEUE_SUFFIX: '-b',
    };
    const config = loadWorkerConfig(env);
    expect(config).toMatchObject({
      temporal: { address: '127.0.0.1:17233', external: false },
      database: { url: 'postgres://postgres@127.0.0.1:55001/looptool', external: false },
      dataDir: '/srv/looptool-b',
      artifactsDir: '/srv/looptool-b/artifacts',
      queues: taskQueues('-b'),
    });
    const cli = loadSharedSettings(env);
    expect({
      temporal: config.temporal,
      database: config.database,
      dataDir: config.dataDir,
      queues: config.queues,
    }).toEqual({
      temporal: cli.temporal,
      database: cli.database,
      dataDir: cli.dataDir,
      queues: cli.queues,
    });
    // An explicit address wins over the port and is marked external: nothing is started for it.
    expect(loadWorkerConfig({ ...env, TEMPORAL_ADDRESS: 'temporal:7233' }).temporal).toEqual({
      address: 'temporal:7233',
      namespace: 'default',
      external: true,
    });
  });

  test('parses lists, numbers and flags, and treats empty strings as unset', () => {
    const config = loadWorkerConfig({
      TEMPORAL_ADDRESS: 'temporal:7233',
      DATABASE_URL: 'postgresql://looptool:pw@postgresql:5432/looptool',
      LOOPTOOL_TASK_QUEUES: 'llm, gpu',
      LOOPTOOL_JUDGE_BASE_URLS: 'http://judge-a:8000/v1, http://judge-b:8000/v1',
      LOOPTOOL_LLM_CONCURRENCY: '64',
      LOOPTOOL_MIGRATE_ON_START: 'false',
      TEMPORAL_NAMESPACE: '',
    });
    expect(config).toMatchObject({
      temporal: { address: 'temporal:7233', namespace: 'default' },
      database: { url: 'postgresql://looptool:pw@postgresql:5432/looptool', external: true },
      serve: ['llm', 'gpu'],
      defaultBaseUrls: { judge: ['http://judge-a:8000/v1', 'http://judge-b:8000/v1'] },
      llmConcurrency: 64,
      migrateOnStart: false,
    });
  });

  test("each role's API key is its own variable, else LOOPTOOL_LLM_API_KEY; a role without either sends none", () => {
    expect(loadWorkerConfig({ LOOPTOOL_LLM_API_KEY: 'shared', LOOPTOOL_JUDGE_API_KEY: 'judge' }).apiKeys).toEqual({
      policy: 'shared',
      judge: 'judge',
      generator: 'shared',
    });
    expect(loadWorkerConfig({ LOOPTOOL_POLICY_API_KEY: 'policy', LOOPTOOL_GENERATOR_API_KEY: ' ' }).apiKeys).toEqual({
      policy: 'policy',
    });
  });

  test('lists every problem with the variable it concerns, not just the first', () => {
    let error: unknown;
    try {
      loadWorkerConfig({
        TEMPORAL_ADDRESS: 'no-port',
        DATABASE_URL: 'mysql://x/y',
        LOOPTOOL_TASK_QUEUES: 'control,cpu',
        LOOPTOOL_GPU_CONCURRENCY: '0',
        LOOPTOOL_POLICY_BASE_URLS: 'not a url',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.map((p) => p.split(':')[0]);
    expect(problems).toEqual(
      expect.arrayContaining([
        'TEMPORAL_ADDRESS',
        'DATABASE_URL',
        'LOOPTOOL_TASK_QUEUES.1',
        'LOOPTOOL_GPU_CONCURRENCY',
        'LOOPTOOL_POLICY_BASE_URLS.0',
      ]),
    );
    expect((error as ConfigError).message).toMatch(/^Invalid worker configuration:\n {2}- /);
  });

  test('.env.example documents exactly the variables the schema reads', () => {
    const example = readFileSync(fileURLToPath(new URL('../../.env.example', import.meta.url)), 'utf8');
    const documented = [...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(WorkerEnvSchema.shape).sort());
  });
});

describe('GPU pools', () => {
  test('each name:concurrency entry is a pool; a malformed or repeated one is a located error', () => {
    expect(loadWorkerConfig({ LOOPTOOL_GPU_POOLS: 'a100:1, h100:2' }).gpuPools).toEqual([
      { name: 'a100', concurrency: 1 },
      { name: 'h100', concurrency: 2 },
    ]);
    expect(() => loadWorkerConfig({ LOOPTOOL_GPU_POOLS: 'a100' })).toThrow(
      /LOOPTOOL_GPU_POOLS.*"a100" is not name:concurrency/s,
    );
    expect(() => loadWorkerConfig({ LOOPTOOL_GPU_POOLS: 'a100:0' })).toThrow(/"a100:0" is not name:concurrency/);
    expect(() => loadWorkerConfig({ LOOPTOOL_GPU_POOLS: 'a:1,a:2' })).toThrow(/pool a is named twice/);
  });
});
