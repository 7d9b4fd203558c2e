import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI, {
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  InternalServerError,
  NotFoundError,
  RateLimitError,
} from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { compileSampleChecker } from '../../core/checker/index.js';
import { sampleToVerlRow } from '../../core/formats/verl.js';
import { GeneratorOutput, JudgeOutput, ValidatorOutput } from '../../core/schemas/model-io.js';
import type { Sample } from '../../core/schemas/sample.js';
import { loadPrompts, pickPrompt, renderTemplate } from '../../activities/llm/prompts.js';
import {
  conversationDate,
  openAiMessages,
  openAiTools,
  promptConversation,
  promptTarget,
  promptTools,
} from '../../activities/llm/render.js';
import { completeStructured } from '../../activities/llm/structured.js';
import { writeVerlParquet } from '../../datasets/writers.js';
import { generateSeedData, type SeedSample } from '../../sim/seed-data.js';
import { startSimServer, type SimServer, type SimStats } from '../../sim/server.js';
import { SKILLS, type Skill } from '../../sim/skills.js';
import type { TrainerJob } from '../../sim/trainer.js';
import { getWorld } from '../../sim/world.js';

const prompts = loadPrompts();

function client(server: SimServer, timeout = 10_000): OpenAI {
  return new OpenAI({ baseURL: server.baseURL, apiKey: 'x', maxRetries: 0, timeout });
}

async function ask(openai: OpenAI, model: string, sample: Sample, options?: OpenAI.RequestOptions) {
  return openai.chat.completions.create(
    {
      model,
      messages: openAiMessages(sample.messages) as unknown as OpenAI.Chat.ChatCompletionMessageParam[],
      tools: openAiTools(sample.tools) as unknown as OpenAI.Chat.ChatCompletionTool[],
      temperature: 0,
      logprobs: true,
    },
    options,
  );
}

/** Polls for a condition (the deadline only turns a hang into a failure; nothing is asserted on time). */
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The share of samples a model answers right by the exact checker against the true target. */
async function accuracy(openai: OpenAI, model: string, seeds: readonly SeedSample[]): Promise<number> {
  let right = 0;
  await Promise.all(
    seeds.map(async (seed) => {
      const completion = await ask(openai, model, seed.sample);
      const message = completion.choices[0]?.message;
      const checker = compileSampleChecker({
        sample: { ...seed.sample, target: seed.trueTarget },
        config: { mode: 'exact' },
      });
      if (!checker.ok) throw new Error(checker.error);
      if (
        checker.checker.check({ content: message?.content ?? null, tool_calls: (message?.tool_calls ?? []) as never })
          .valid
      )
        right++;
    }),
  );
  return right / seeds.length;
}

async function http(
  server: SimServer,
  method: string,
  route: string,
  body?: unknown,
): Promise<{ status: number; json: unknown; text: string }> {
  const response = await fetch(`${server.url}${route}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

async function waitForJob(
  server: SimServer,
  id: string,
  done: (job: TrainerJob) => boolean = (job) => !['queued', 'running'].includes(job.status),
): Promise<TrainerJob> {
  for (let i = 0; i < 600; i++) {
    const job = (await http(server, 'GET', `/trainer/v1/jobs/${id}`)).json as TrainerJob;
    if (done(job)) return job;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`job ${id} did not settle`);
}

describe('the sim server through the real OpenAI client', () => {
  let server: SimServer;
  let openai: OpenAI;
  let scratch: string;
  const seeds = generateSeedData({ count: 240, seed: 31, wrongLabelRate: 0.2 });

  beforeAll(async () => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'sim-server-'));
    server = await startSimServer({ seed: 7, trainer: { jobSeconds: 0.3 }, learning: { learningScale: 150 } });
    openai = client(server);
  });
  afterAll(async () => {
    await server?.close();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('serves health and lists its models like vLLM; an unknown model is a 404', async () => {
    expect((await http(server, 'GET', '/health')).status).toBe(200);
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['sim-student', 'sim-judge', 'sim-generator']);
    const error = await ask(openai, 'no-such-model', seeds[0]!.sample).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).message).toContain('does not exist');
  });

  test('the student answers with hermes-style tool calls and per-token logprobs', async () => {
    let sawCall = false;
    let sawText = false;
    for (const seed of seeds.slice(0, 60)) {
      const completion = await ask(openai, 'sim-student', seed.sample);
      const choice = completion.choices[0]!;
      expect(completion.object).toBe('chat.completion');
      expect(completion.usage?.completion_tokens).toBe(choice.logprobs?.content?.length);
      for (const token of choice.logprobs?.content ?? []) {
        expect(token.logprob).toBeLessThanOrEqual(0);
        expect(token.bytes).toEqual([...Buffer.from(token.token)]);
      }
      if (choice.message.tool_calls && choice.message.tool_calls.length > 0) {
        sawCall = true;
        expect(choice.finish_reason).toBe('tool_calls');
        expect(choice.message.content).toBeNull();
        for (const call of choice.message.tool_calls) {
          expect(call.type).toBe('function');
          expect(call.id).toMatch(/^chatcmpl-tool-/);
          expect(typeof (call as { function: { arguments: string } }).function.arguments).toBe('string');
        }
      } else {
        sawText = true;
        expect(typeof choice.message.content).toBe('string');
      }
    }
    expect(sawCall && sawText).toBe(true);
  });

  test('a fully competent student writes float arguments as floats (40.0 stays 40.0) and stops at max_tokens', async () => {
    const perfect = await startSimServer({
      bfclDir: false,
      learning: { base: Object.fromEntries(SKILLS.map((s) => [s, 1])) as Record<Skill, number>, ceiling: 1 },
    });
    try {
      const sample: Sample = {
        tools: [getWorld().definition('convert_currency')],
        messages: [{ role: 'user', content: 'Convert 40.0 USD to JPY. Also, how much is 12.5 EUR in GBP?' }],
        target: { kind: 'text' },
      };
      const completion = await ask(client(perfect), 'sim-student', sample);
      const calls = completion.choices[0]?.message.tool_calls?.map(
        (c) => (c as { function: { name: string; arguments: string } }).function,
      );
      expect(calls).toEqual([
        { name: 'convert_currency', arguments: '{"amount": 40.0, "from_currency": "USD", "to_currency": "JPY"}' },
        { name: 'convert_currency', arguments: '{"amount": 12.5, "from_currency": "EUR", "to_currency": "GBP"}' },
      ]);
      const cut = await client(perfect).chat.completions.create({
        model: 'sim-student',
        messages: openAiMessages(sample.messages) as unknown as OpenAI.Chat.ChatCompletionMessageParam[],
        tools: openAiTools(sample.tools) as unknown as OpenAI.Chat.ChatCompletionTool[],
        max_tokens: 5,
      });
      expect(cut.choices[0]).toMatchObject({
        finish_reason: 'length',
        message: { content: '<tool_call>', tool_calls: [] },
      });
    } finally {
      await perfect.close();
    }
  });

  test('judge, validator and generator replies parse with the core schemas through completeStructured', async () => {
    const endpoint = { baseURL: server.baseURL, client: openai };
    const judgePrompt = pickPrompt(prompts, 'judge');
    const corrupted = seeds.find((s) => s.corruption === 'wrong_value')!;
    const judged = await completeStructured(endpoint, {
      model: 'sim-judge',
      name: 'judge_verdict',
      schema: JudgeOutput,
      messages: [
        { role: 'system', content: renderTemplate(judgePrompt.system, { tools: promptTools(corrupted.sample.tools) }) },
        {
          role: 'user',
          content: renderTemplate(judgePrompt.user, {
            date: conversationDate(corrupted.sample),
            conversation: promptConversation(corrupted.sample.messages),
            response_1: promptTarget(corrupted.sample.target),
            response_2: promptTarget(corrupted.trueTarget),
          }),
        },
      ],
    });
    if (!judged.ok) throw new Error(judged.reason);
    expect(JudgeOutput.parse(judged.value)).toEqual(judged.value);
    expect(judged.value.error_analysis.length).toBeGreaterThan(10);

    const validatorPrompt = pickPrompt(prompts, 'validator');
    const validated = await completeStructured(endpoint, {
      model: 'sim-judge',
      name: 'sample_validation',
      schema: ValidatorOutput,
      messages: [
        {
          role: 'system',
          content: renderTemplate(validatorPrompt.system, { tools: promptTools(corrupted.sample.tools) }),
        },
        {
          role: 'user',
          content: renderTemplate(validatorPrompt.user, {
            conversation: promptConversation(corrupted.sample.messages),
            response: promptTarget(corrupted.sample.target),
          }),
        },
      ],
    });
    if (!validated.ok) throw new Error(validated.reason);
    expect(['CORRECT', 'INCORRECT']).toContain(validated.value.verdict);

    const generatorPrompt = pickPrompt(prompts, 'generator');
    const clean = seeds.filter((s) => !s.corruption && s.trueTarget.kind === 'calls');
    let parsedOutputs = 0;
    for (const seed of clean.slice(0, 20)) {
      const generated = await completeStructured(endpoint, {
        model: 'sim-generator',
        name: 'generated_sample',
        schema: GeneratorOutput,
        temperature: 1,
        messages: [
          {
            role: 'system',
            content: renderTemplate(generatorPrompt.system, {
              date: conversationDate(seed.sample),
              tools: promptTools(seed.sample.tools),
            }),
          },
          {
            role: 'user',
            content: renderTemplate(generatorPrompt.user, {
              seed_conversation: promptConversation(seed.sample.messages),
              correct_response: promptTarget(seed.trueTarget),
              incorrect_response: promptTarget({ kind: 'text', text: 'Sorry.' }),
              error_analysis: 'The response made no call.',
              scenario_focus: 'user_persona',
              scenario_guidance: 'Change the user.',
              turn_guidance: 'make the new sample a multi-turn dialogue',
            }),
          },
        ],
      });
      if (generated.ok) {
        parsedOutputs++;
        expect(generated.value.conversation.at(-1)?.role).toBe('user');
      }
    }
    // About a tenth of generator outputs are flawed on purpose; most parse.
    expect(parsedOutputs).toBeGreaterThanOrEqual(14);
    const stats = (await http(server, 'GET', '/sim/stats')).json as SimStats;
    expect(stats.requests.byTask).toMatchObject({ judge: 1, validator: 1, generator: 20 });
    expect(stats.requests.byRole.judge).toBe(2);
  });

  test('rate limiting answers 429 with retry-after; a server error is a 500', async () => {
    await http(server, 'POST', '/sim/faults', { role: 'policy', kind: 'rate_limit', count: 1, retryAfterSeconds: 3 });
    const limited = await ask(openai, 'sim-student', seeds[0]!.sample).catch((err: unknown) => err);
    expect(limited).toBeInstanceOf(RateLimitError);
    expect((limited as RateLimitError).headers?.get('retry-after')).toBe('3');
    await expect(ask(openai, 'sim-student', seeds[0]!.sample)).resolves.toBeDefined();

    await http(server, 'POST', '/sim/faults', [{ role: 'judge', kind: 'server_error', count: 2 }]);
    // The rule is for the judge role: the policy is unaffected.
    await expect(ask(openai, 'sim-student', seeds[0]!.sample)).resolves.toBeDefined();
    const failed = await openai.chat.completions
      .create({ model: 'sim-judge', messages: [{ role: 'user', content: '<response_1>' }] })
      .catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(InternalServerError);
    expect((await http(server, 'GET', '/sim/faults')).json).toMatchObject({
      rules: [{ kind: 'server_error', remaining: 1 }],
    });
    expect((await http(server, 'DELETE', '/sim/faults')).status).toBe(200);
    expect(((await http(server, 'GET', '/sim/stats')).json as SimStats).faults).toMatchObject({
      rate_limit: 1,
      server_error: 1,
    });
  });

  test('a timeout fault hangs until the client gives up; latency holds one answer back while others are served', async () => {
    const before = server.stats();
    const delta = () => {
      const now = server.stats();
      return {
        requests: now.requests.total - before.requests.total,
        aborted: now.requests.aborted - before.requests.aborted,
        answered: now.student.answered - before.student.answered,
        timeout: now.faults.timeout - before.faults.timeout,
        latency: now.faults.latency - before.faults.latency,
      };
    };

    await http(server, 'POST', '/sim/faults', { rules: [{ kind: 'timeout', count: 1 }] });
    const timedOut = await ask(client(server, 300), 'sim-student', seeds[0]!.sample).catch((err: unknown) => err);
    // The client's own timeout ended it (not an error answer): the server took the request and never answered, and
    // then saw the client close it.
    expect(timedOut).toBeInstanceOf(APIConnectionTimeoutError);
    await until('the server to see the timed-out request closed', () => delta().aborted === 1);
    expect(delta()).toEqual({ requests: 1, aborted: 1, answered: 0, timeout: 1, latency: 0 });

    // A latency far longer than the test: the delayed request is held while the next one (the rule had count 1) is
    // answered, and once its client leaves it is never answered at all.
    await http(server, 'POST', '/sim/faults', { kind: 'latency', latencyMs: 60_000, count: 1 });
    const controller = new AbortController();
    const slow = ask(openai, 'sim-student', seeds[0]!.sample, { signal: controller.signal }).catch(
      (err: unknown) => err,
    );
    await until('the delayed request to reach the server', () => delta().latency === 1);
    await expect(ask(openai, 'sim-student', seeds[1]!.sample)).resolves.toBeDefined();
    expect(delta()).toEqual({ requests: 3, aborted: 1, answered: 1, timeout: 1, latency: 1 });
    controller.abort();
    expect(await slow).toBeInstanceOf(APIUserAbortError);
    await until('the server to see the delayed request closed', () => delta().aborted === 2);
    expect(delta()).toEqual({ requests: 3, aborted: 2, answered: 1, timeout: 1, latency: 1 });

    // A latency that runs out is answered, as an undelayed request would be.
    await http(server, 'POST', '/sim/faults', { kind: 'latency', latencyMs: 50, count: 1 });
    const late = await ask(openai, 'sim-student', seeds[0]!.sample);
    expect(late.choices[0]?.message).toEqual((await ask(openai, 'sim-student', seeds[0]!.sample)).choices[0]?.message);
    expect(delta()).toEqual({ requests: 5, aborted: 2, answered: 3, timeout: 1, latency: 2 });
  });

  test('a truncated body reaches the client as an error, not as a reply', async () => {
    await http(server, 'POST', '/sim/faults', { kind: 'truncated', count: 1 });
    const cut = await ask(openai, 'sim-student', seeds[0]!.sample).catch((err: unknown) => err);
    // The body ends mid-JSON: the client fails to parse it (a SyntaxError), as with a proxy that cut the response.
    expect(cut).toBeInstanceOf(SyntaxError);
    expect(cut).not.toBeInstanceOf(APIError);
    await expect(ask(openai, 'sim-student', seeds[0]!.sample)).resolves.toBeDefined();
  });

  test('trainer jobs: submit, resubmit the same key, follow steps to success, read logs; cancel another', async () => {
    const dataset = path.join(scratch, 'train.parquet');
    await writeVerlParquet(
      dataset,
      seeds.map((s, index) => {
        const row = sampleToVerlRow({ sample: s.sample, index });
        if (!row.ok) throw new Error(row.rejection.reason);
        return row.value;
      }),
    );
    const request = {
      job_key: 'loop/e2e/iter-1/train',
      dataset_path: dataset,
      base_checkpoint: null,
      output_dir: path.join(scratch, 'ckpt-1'),
      epochs: 2,
    };
    const created = await http(server, 'POST', '/trainer/v1/jobs', request);
    expect(created.status).toBe(201);
    const job = created.json as TrainerJob;
    expect(job).toMatchObject({ job_key: request.job_key, status: expect.stringMatching(/queued|running/) as unknown });
    const again = await http(server, 'POST', '/trainer/v1/jobs', request);
    expect(again.status).toBe(200);
    expect((again.json as TrainerJob).id).toBe(job.id);
    expect((await http(server, 'POST', '/trainer/v1/jobs', { ...request, epochs: 3 })).status).toBe(409);
    expect((await http(server, 'POST', '/trainer/v1/jobs', { job_key: 'x' })).status).toBe(422);

    const midway = await waitForJob(server, job.id, (j) => j.step > 0 || j.status !== 'running');
    expect(midway.total_steps).toBe(Math.ceil((seeds.length * 2) / 32));
    const done = await waitForJob(server, job.id);
    expect(done).toMatchObject({ status: 'succeeded', step: done.total_steps, checkpoint_uri: request.output_dir });
    expect(existsSync(path.join(request.output_dir, 'checkpoint.json'))).toBe(true);
    expect(
      (
        (await http(server, 'GET', `/trainer/v1/jobs?job_key=${encodeURIComponent(request.job_key)}`)).json as {
          data: TrainerJob[];
        }
      ).data,
    ).toHaveLength(1);
    const logs = (await http(server, 'GET', `/trainer/v1/jobs/${job.id}/logs`)).json as { lines: string[] };
    expect(logs.lines.join('\n')).toContain('written to');

    const slow = await startSimServer({ trainer: { jobSeconds: 60 }, bfclDir: false });
    try {
      const long = (
        await http(slow, 'POST', '/trainer/v1/jobs', {
          ...request,
          job_key: 'long',
          output_dir: path.join(scratch, 'long'),
        })
      ).json as TrainerJob;
      await waitForJob(slow, long.id, (j) => j.status === 'running');
      const cancelled = await http(slow, 'POST', `/trainer/v1/jobs/${long.id}/cancel`);
      expect(cancelled.json).toMatchObject({ status: 'cancelled' });
      expect(existsSync(path.join(scratch, 'long', 'checkpoint.json'))).toBe(false);
      const bad = (
        await http(slow, 'POST', '/trainer/v1/jobs', {
          ...request,
          job_key: 'bad',
          dataset_path: path.join(scratch, 'missing.parquet'),
        })
      ).json as TrainerJob;
      expect(await waitForJob(slow, bad.id)).toMatchObject({
        status: 'failed',
        error: expect.stringContaining('ENOENT') as unknown,
      });
      expect((await http(slow, 'GET', '/trainer/v1/jobs/job-none')).status).toBe(404);
    } finally {
      await slow.close();
    }
  });

  test('LoRA load and unload change /v1/models, and an adapter trained on correct labels answers better', async () => {
    const clean = generateSeedData({ count: 400, seed: 41, wrongLabelRate: 0 });
    const dataset = path.join(scratch, 'clean.parquet');
    await writeVerlParquet(
      dataset,
      clean.map((s, index) => {
        const row = sampleToVerlRow({ sample: s.sample, index });
        if (!row.ok) throw new Error(row.rejection.reason);
        return row.value;
      }),
    );
    const output = path.join(scratch, 'ckpt-clean');
    const job = (
      await http(server, 'POST', '/trainer/v1/jobs', {
        job_key: 'clean',
        dataset_path: dataset,
        output_dir: output,
        epochs: 2,
      })
    ).json as TrainerJob;
    expect((await waitForJob(server, job.id)).status).toBe('succeeded');

    const loaded = await http(server, 'POST', '/v1/load_lora_adapter', {
      lora_name: 'policy-iter-1',
      lora_path: output,
    });
    expect(loaded.status).toBe(200);
    expect(loaded.text).toContain("'policy-iter-1' added");
    expect(
      (await http(server, 'POST', '/v1/load_lora_adapter', { lora_name: 'policy-iter-1', lora_path: output })).status,
    ).toBe(400);
    expect(
      (await http(server, 'POST', '/v1/load_lora_adapter', { lora_name: 'broken', lora_path: scratch })).status,
    ).toBe(400);
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toContain('policy-iter-1');
    expect(models.data.find((m) => m.id === 'policy-iter-1')).toMatchObject({ parent: 'sim-student', root: output });

    // Held-out samples of the same skills: the adapter generalises, it does not memorise.
    const heldOut = generateSeedData({ count: 300, seed: 42, wrongLabelRate: 0 });
    const base = await accuracy(openai, 'sim-student', heldOut);
    const tuned = await accuracy(openai, 'policy-iter-1', heldOut);
    expect(tuned - base).toBeGreaterThan(0.05);

    expect((await http(server, 'POST', '/v1/unload_lora_adapter', { lora_name: 'policy-iter-1' })).status).toBe(200);
    expect((await openai.models.list()).data.map((m) => m.id)).not.toContain('policy-iter-1');
    expect(await ask(openai, 'policy-iter-1', heldOut[0]!.sample).catch((err: unknown) => err)).toBeInstanceOf(
      NotFoundError,
    );
    expect((await http(server, 'POST', '/v1/unload_lora_adapter', { lora_name: 'policy-iter-1' })).status).toBe(404);
  });
});
