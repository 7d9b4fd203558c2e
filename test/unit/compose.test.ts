import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { searchAttributeCliSpecs } from '../../core/constants.js';
import { loadWorkerConfig, WorkerEnvSchema } from '../../worker/config.js';

/** No Docker engine runs in CI, so the compose file is checked by reading it against the code it must agree with. */
interface ComposeService {
  image?: string;
  build?: unknown;
  profiles?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  command?: string[] | string;
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  deploy?: { resources?: { reservations?: { devices?: { driver: string; capabilities: string[] }[] } } };
}

const composeText = readFileSync(fileURLToPath(new URL('../../docker-compose.yml', import.meta.url)), 'utf8');
const compose = parse(composeText, { merge: true }) as { services: Record<string, ComposeService> };
const services = compose.services;

/** Compose's `${VAR:-default}` and `${VAR}` with an empty environment, i.e. what `docker compose up` uses by default. */
const interpolate = (value: string) =>
  value.replace(/\$\{([A-Z0-9_]+)(?::-([^}]*))?\}/g, (_m, _name, fallback) => fallback ?? '');
const commandArgs = (service: ComposeService) =>
  (Array.isArray(service.command) ? service.command : [service.command ?? '']).map(interpolate);
const listensOn = (name: string): number => {
  const port = commandArgs(services[name]!).find((arg) => arg.startsWith('--port='));
  return Number(port?.split('=')[1]);
};

describe('docker-compose.yml', () => {
  test('has the production-like stack: PostgreSQL 16, Temporal on PostgreSQL, its UI on 8080, the worker, GPU vLLM servers', () => {
    expect(Object.keys(services).sort()).toEqual(
      [
        'postgresql',
        'temporal',
        'temporal-admin-tools',
        'temporal-setup',
        'temporal-ui',
        'vllm-judge',
        'vllm-policy',
        'worker',
      ].sort(),
    );
    expect(services.postgresql!.image).toBe('postgres:16');
    expect(services.temporal!.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
    expect(services['temporal-ui']!.ports).toContain('8080:8080');
    expect(services.temporal!.ports).toContain('7233:7233');
    expect(services.worker!.build).toBe('.');
  });

  test("the worker's environment parses with the worker's own config schema and uses only variables it knows", () => {
    const env = Object.fromEntries(
      Object.entries(services.worker!.environment!).map(([k, v]) => [k, interpolate(String(v))]),
    );
    const known = Object.keys(WorkerEnvSchema.shape);
    expect(Object.keys(env).filter((key) => !known.includes(key))).toEqual([]);
    const config = loadWorkerConfig(env);
    expect(config.serve).toEqual(['control', 'llm', 'gpu']);

    const [temporalHost, temporalPort] = config.temporal.address.split(':');
    expect(services[temporalHost!]?.ports).toContain(`${temporalPort}:7233`);

    const database = new URL(config.database.url);
    expect(services[database.hostname]?.image).toMatch(/^postgres:/);
    expect(database.pathname).toBe(`/${services[database.hostname]!.environment!.POSTGRES_DB}`);
    expect(decodeURIComponent(database.password)).toBe(
      interpolate(services.postgresql!.environment!.POSTGRES_PASSWORD!),
    );

    for (const url of [
      ...config.defaultBaseUrls.policy!,
      ...config.defaultBaseUrls.judge!,
      ...config.defaultBaseUrls.generator!,
    ]) {
      const { hostname, port, pathname } = new URL(url);
      expect(services[hostname], `${url} names a compose service`).toBeDefined();
      expect(Number(port)).toBe(listensOn(hostname));
      expect(pathname).toBe('/v1');
    }
  });

  test('registers exactly the search attributes the workflows set', () => {
    const script = commandArgs(services['temporal-setup']!).join('\n');
    const specs = /for spec in ([^;]+); do/.exec(script)?.[1]?.trim().split(/\s+/);
    expect(specs).toEqual(searchAttributeCliSpecs());
  });

  test('vLLM servers sit under the gpu profile with GPU reservations, tool calling on, and healthchecks', () => {
    for (const name of ['vllm-policy', 'vllm-judge']) {
      const service = services[name]!;
      expect(service.profiles).toEqual(['gpu']);
      expect(service.deploy?.resources?.reservations?.devices?.[0]).toMatchObject({
        driver: 'nvidia',
        capabilities: ['gpu'],
      });
      expect(service.healthcheck?.test.join(' ')).toContain(`http://localhost:${listensOn(name)}/health`);
    }
    expect(commandArgs(services['vllm-policy']!)).toEqual(
      expect.arrayContaining(['--enable-auto-tool-choice', '--tool-call-parser=hermes', '--enable-lora']),
    );
    expect(services['vllm-policy']!.environment).toMatchObject({ VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' });
  });

  test('every start-order dependency points at a service that exists and can report that condition', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        const target = services[dependency];
        expect(target, `${name} depends on ${dependency}`).toBeDefined();
        if (condition === 'service_healthy')
          expect(target!.healthcheck, `${dependency} needs a healthcheck`).toBeDefined();
        expect(target!.profiles ?? [], `${name} must not wait on an optional profile`).toEqual(service.profiles ?? []);
      }
    }
  });
});
