import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { EMBEDDED_DATABASE_URL } from '../../db/embedded-server.js';
import { ConfigError, loadWorkerConfig, WorkerEnvSchema } from '../../worker/config.js';

describe('loadWorkerConfig', () => {
  test('an empty environment gives the embedded default', () => {
    expect(loadWorkerConfig({})).toEqual({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_NAMESPACE: 'default',
      DATABASE_URL: EMBEDDED_DATABASE_URL,
      LOOPTOOL_TASK_QUEUES: ['control', 'llm', 'gpu'],
      LOOPTOOL_TASK_QUEUE_SUFFIX: '',
      LOOPTOOL_LLM_CONCURRENCY: 16,
      LOOPTOOL_GPU_CONCURRENCY: 1,
      LOOPTOOL_MIGRATE_ON_START: true,
      LOOPTOOL_SHUTDOWN_GRACE_SECONDS: 30,
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
      TEMPORAL_ADDRESS: 'temporal:7233',
      TEMPORAL_NAMESPACE: 'default',
      LOOPTOOL_TASK_QUEUES: ['llm', 'gpu'],
      LOOPTOOL_JUDGE_BASE_URLS: ['http://judge-a:8000/v1', 'http://judge-b:8000/v1'],
      LOOPTOOL_LLM_CONCURRENCY: 64,
      LOOPTOOL_MIGRATE_ON_START: false,
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
      expect.arrayContaining(['TEMPORAL_ADDRESS', 'DATABASE_URL', 'LOOPTOOL_TASK_QUEUES.1', 'LOOPTOOL_GPU_CONCURRENCY', 'LOOPTOOL_POLICY_BASE_URLS.0']),
    );
    expect((error as ConfigError).message).toMatch(/^Invalid worker configuration:\n {2}- /);
  });

  test('.env.example documents exactly the variables the schema reads', () => {
    const example = readFileSync(fileURLToPath(new URL('../../.env.example', import.meta.url)), 'utf8');
    const documented = [...example.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(WorkerEnvSchema.shape).sort());
  });
});
