import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { completeStructured } from '../../../activities/llm/structured.js';
import { ExpandConfig } from '../../../core/config.js';
import { GeneratorOutput } from '../../../core/schemas/model-io.js';

/**
 * The generation request as a server receives it: the expand config's sampling goes on the wire, `top_k` as vLLM's
 * extra body field beside the OpenAI API's own. A local HTTP server records each body and answers one completion.
 */

let server: Server;
let baseURL: string;
const bodies: Record<string, unknown>[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
    req.on('end', () => {
      bodies.push(JSON.parse(raw) as Record<string, unknown>);
      const content = JSON.stringify({
        conversation: [{ role: 'user', content: 'Book me a flight.' }],
        content: 'From which city?',
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          id: 'c1',
          object: 'chat.completion',
          created: 0,
          model: 'gen',
          choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('a generation request', () => {
  test("carries the expand config's temperature, top_p, top_k, presence_penalty and max_tokens", async () => {
    const endpoint = { baseURL, client: new OpenAI({ baseURL, apiKey: 'none', maxRetries: 0 }) };
    const sampling = ExpandConfig.parse({ temperature: 0.8, topK: 40, presencePenalty: 0.5, maxTokens: 2048 });
    const reply = await completeStructured(endpoint, {
      model: 'gen',
      name: 'generated_sample',
      schema: GeneratorOutput,
      messages: [{ role: 'user', content: 'make one' }],
      temperature: sampling.temperature,
      topP: sampling.topP,
      topK: sampling.topK,
      presencePenalty: sampling.presencePenalty,
      maxTokens: sampling.maxTokens,
      seed: 12,
    });
    expect(reply.ok).toBe(true);
    expect(bodies.at(-1)).toMatchObject({
      model: 'gen',
      temperature: 0.8,
      top_p: 0.9,
      top_k: 40,
      presence_penalty: 0.5,
      max_tokens: 2048,
      seed: 12,
      response_format: { type: 'json_schema', json_schema: { name: 'generated_sample' } },
    });

    // The defaults are the official code's, and a request that sets none of them sends none (the judge's votes).
    const defaults = ExpandConfig.parse({});
    expect([defaults.temperature, defaults.topP, defaults.topK, defaults.presencePenalty, defaults.maxTokens]).toEqual([
      1.0, 0.9, 20, 1.2, 8192,
    ]);
    await completeStructured(endpoint, {
      model: 'gen',
      name: 'generated_sample',
      schema: GeneratorOutput,
      messages: [{ role: 'user', content: 'make one' }],
    });
    const plain = bodies.at(-1)!;
    for (const field of ['top_p', 'top_k', 'presence_penalty', 'max_tokens', 'seed'])
      expect(plain).not.toHaveProperty(field);
    expect(plain.temperature).toBe(0);
  });
});
