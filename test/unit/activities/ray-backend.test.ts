import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, describe, expect, test } from 'vitest';
import { toApplicationFailure, TRAINER } from '../../../activities/failures.js';
import { rayAuthToken, raySubmissionId, RayTrainingBackend } from '../../../activities/training/ray-backend.js';
import { RayTraining } from '../../../core/config.js';
import { shellWord } from '../../../core/shell.js';
import { ErrorType } from '../../../core/errors.js';

/**
 * The Ray backend's parts that need no Ray: the submission id of a job key, the entrypoint's quoting (run through a
 * real `sh -c`, as Ray runs it), where the token comes from, and how an API that cannot answer is classified. The
 * backend against a real Ray head is test/e2e/ray-backend.test.ts.
 */

const scratch = mkdtempSync(path.join(os.tmpdir(), 'ray-backend-unit-'));
const servers: Server[] = [];
afterAll(async () => {
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  rmSync(scratch, { recursive: true, force: true });
});

const config = (address: string) =>
  RayTraining.parse({ backend: 'ray', address, command: ['train', '{spec}'], workDir: path.join(scratch, 'work') });

/** A server that answers every request with `status` and `body`, as a proxy in front of a restarting head does. */
async function answering(status: number, body: string, headers: Record<string, string> = {}): Promise<string> {
  const server = createServer((_req, res) => {
    res.writeHead(status, headers);
    res.end(body);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An address nothing listens on: a port that was free a moment ago. */
async function closedAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

describe('the ray backend without Ray', () => {
  test('a job key maps to a Ray submission id: readable when safe, distinct when characters had to be replaced', () => {
    expect(raySubmissionId('demo-s7-iter-2')).toBe('looptool-demo-s7-iter-2');
    const slashed = raySubmissionId('loop/a/iter-1');
    expect(slashed).toMatch(/^looptool-loop_a_iter-1-[0-9a-f]{12}$/);
    expect(raySubmissionId('loop_a_iter-1')).toBe('looptool-loop_a_iter-1');
    expect(slashed).not.toBe(raySubmissionId('loop:a:iter-1'));
    expect(raySubmissionId('x'.repeat(300)).length).toBeLessThanOrEqual(9 + 100 + 13);
  });

  test('the entrypoint is the argv, each element one shell word, whatever it holds', () => {
    const argv = ['plain', 'with space', "it's", '$HOME', 'a;b', '`x`', '"q"', '', 'tab\there', '{spec}.json', '-x=1'];
    const printer = 'console.log(JSON.stringify(process.argv.slice(1)))';
    const entrypoint = [process.execPath, '-e', printer, ...argv].map(shellWord).join(' ');
    expect(JSON.parse(execFileSync('sh', ['-c', entrypoint], { encoding: 'utf8' }))).toEqual(argv);
    expect(shellWord('/abs/bin/looptool.js')).toBe('/abs/bin/looptool.js');
    // Quoted, or as the first word it would be a variable assignment instead of the program to run.
    expect(shellWord('A=1')).toBe("'A=1'");
  });

  test("the token is found as Ray's clients find it: RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names", () => {
    const file = path.join(scratch, 'token');
    writeFileSync(file, 'from-file\n');
    expect(rayAuthToken({ RAY_AUTH_TOKEN: 'from-env', RAY_AUTH_TOKEN_PATH: file })).toBe('from-env');
    expect(rayAuthToken({ RAY_AUTH_TOKEN_PATH: file })).toBe('from-file');
    expect(rayAuthToken({ RAY_AUTH_TOKEN_PATH: path.join(scratch, 'missing') })).toBeUndefined();
  });

  test('an unreachable API is a retryable trainer failure, never a failed job', async () => {
    const backend = new RayTrainingBackend(config(await closedAddress()));
    const err = await backend.status('looptool-x-iter-1').catch((e: unknown) => e);
    const failure = toApplicationFailure(err, 'ray trainer', TRAINER) as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: ErrorType.TrainerUnavailable, nonRetryable: false });
    expect(failure.message).toContain('ECONNREFUSED');
  });

  test("a 5xx (a restarting head, a proxy's error page) is retryable, after the server's retry-after", async () => {
    const backend = new RayTrainingBackend(config(await answering(503, 'upstream down', { 'retry-after': '3' })));
    const err = await backend.logs('looptool-x-iter-1').catch((e: unknown) => e);
    expect(toApplicationFailure(err, 'ray trainer', TRAINER)).toMatchObject({
      type: ErrorType.TrainerUnavailable,
      nonRetryable: false,
      nextRetryDelay: 3000,
    });
    // A 200 whose body is not JSON is not Ray's answer either.
    const html = new RayTrainingBackend(config(await answering(200, '<html>gateway</html>')));
    const htmlErr = await html.status('looptool-x-iter-1').catch((e: unknown) => e);
    expect(toApplicationFailure(htmlErr, 'ray trainer', TRAINER)).toMatchObject({ nonRetryable: false });
  });

  test('a refused token is a non-retryable rejection that says which variable to set', async () => {
    const backend = new RayTrainingBackend(config(await answering(403, 'Forbidden: Invalid authentication token')), {
      authToken: 'wrong',
    });
    const err = await backend.status('looptool-x-iter-1').catch((e: unknown) => e);
    const failure = toApplicationFailure(err, 'ray trainer', TRAINER) as ApplicationFailure;
    expect(failure).toMatchObject({ type: ErrorType.TrainerRequestRejected, nonRetryable: true });
    expect(failure.message).toContain('RAY_AUTH_TOKEN');
  });

  test('runtimeEnv.env_vars must be strings, as Ray wants them: refused at config parse, naming the field', () => {
    const parsed = RayTraining.safeParse({
      backend: 'ray',
      address: 'http://ray:8265',
      command: ['train'],
      workDir: '/shared',
      runtimeEnv: { env_vars: { STEPS: 3 }, pip: ['x'] },
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['runtimeEnv', 'env_vars', 'STEPS']);
  });
});
