import { getEventListeners } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createHttpTransport } from '../../../activities/llm/http-fetch.js';
import { createJsonPost } from '../../../activities/llm/json-post.js';
import { fitsPolicyCompletion } from '../../../activities/llm/policy-chat.js';
import { onAbort } from '../../../activities/llm/abort.js';
import { decodePageSamples } from '../../../activities/stage-batch.js';
import { checkModelResponse, PolicyCompletion } from '../../../core/schemas/model-response.js';
import type { Sample } from '../../../core/schemas/sample.js';
import { decodeSample, encodeSample, StoredSampleCorruptError, ToolsetCache } from '../../../db/sample-codec.js';
import type { PageSample } from '../../../db/queries/stage-batches.js';

/**
 * The probe's fast paths must decide exactly as the slow ones they stand in for: the hand check of a completion never
 * accepts what zod refuses, the page decoder gives decodeSample's samples and errors, and the JSON POST fails with the
 * OpenAI client's own errors.
 */

const completion = (): Record<string, unknown> => ({
  id: 'c1',
  object: 'chat.completion',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: 'hi', tool_calls: [], reasoning_content: null },
      logprobs: { content: [{ token: 'hi', logprob: -0.5, bytes: [104, 105], top_logprobs: [] }] },
      finish_reason: 'stop',
    },
  ],
  usage: { prompt_tokens: 10, completion_tokens: 1, total_tokens: 11 },
});

/** Deterministic variations of a completion, each one field changed to a value of another kind. */
function variants(): unknown[] {
  const odd: unknown[] = [
    null,
    undefined,
    'x',
    '',
    'a\u0000b',
    0,
    -1,
    1.5,
    2 ** 31,
    2 ** 31 - 1,
    NaN,
    true,
    [],
    {},
    [{}],
    [1],
    [null],
  ];
  const paths: (string | number)[][] = [
    [],
    ['choices'],
    ['choices', 0],
    ['choices', 1],
    ['choices', 0, 'message'],
    ['choices', 0, 'message', 'content'],
    ['choices', 0, 'message', 'tool_calls'],
    ['choices', 0, 'message', 'tool_calls', 0],
    ['choices', 0, 'logprobs'],
    ['choices', 0, 'logprobs', 'content'],
    ['choices', 0, 'logprobs', 'content', 0],
    ['choices', 0, 'logprobs', 'content', 0, 'logprob'],
    ['usage'],
    ['usage', 'prompt_tokens'],
    ['usage', 'completion_tokens'],
  ];
  const out: unknown[] = [];
  for (const path of paths)
    for (const value of odd) {
      if (path.length === 0) {
        out.push(value);
        continue;
      }
      const body = completion() as Record<string | number, unknown>;
      if (path[0] === 'choices' && path[1] === 1)
        (body.choices as unknown[]).push(structuredClone((body.choices as unknown[])[0]));
      let at: Record<string | number, unknown> = body;
      for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
      if (value === undefined) delete at[path[path.length - 1]!];
      else at[path[path.length - 1]!] = value;
      out.push(body);
    }
  return out;
}

describe('fitsPolicyCompletion', () => {
  test('accepts a completion exactly when zod does (never one zod refuses)', () => {
    let accepted = 0;
    for (const body of [completion(), ...variants()]) {
      const fits = fitsPolicyCompletion(body);
      const zod = checkModelResponse(PolicyCompletion, body).ok;
      if (fits) accepted++;
      expect({ body, fits }).toEqual({ body, fits: zod });
    }
    expect(accepted).toBeGreaterThan(20);
  });
});

describe('decodePageSamples', () => {
  const tools: Sample['tools'] = [
    {
      name: 'get_weather',
      description: 'Weather',
      parameters: { type: 'dict', properties: { city: { type: 'string' } } },
    },
  ];
  const sample = (i: number, toolset: Sample['tools'] = tools): Sample => ({
    tools: toolset,
    messages: [{ role: 'user', content: `question ${i}` }],
    target: { kind: 'calls', calls: [{ name: 'get_weather', arguments: { city: `c${i}`, scale: 1.0 } }] },
  });
  const page = (samples: Sample[]): PageSample[] => {
    const seen = new Set<string>();
    return samples.map((s) => {
      const stored = encodeSample(s);
      const first = !seen.has(stored.toolsetId);
      seen.add(stored.toolsetId);
      return { ...stored, toolsJson: first ? stored.toolsJson : null };
    });
  };

  test('gives decodeSample’s samples, tools parsed once per toolset (floats kept)', () => {
    const samples = [sample(1), sample(2), sample(3, []), sample(4)];
    const rows = page(samples);
    const decoded = decodePageSamples(rows);
    for (const s of samples) {
      const stored = encodeSample(s);
      expect(decoded.get(stored.id)).toEqual(decodeSample(stored));
    }
    expect(decoded.get(rows[0]!.id)!.tools).toBe(decoded.get(rows[1]!.id)!.tools);
  });

  test('with a toolset cache, later pages share the list decoded first and decode as decodeSample does', () => {
    const known = new ToolsetCache();
    const first = page([sample(1)]);
    const later = page([sample(2), sample(3, [])]);
    const one = decodePageSamples(first, known);
    const two = decodePageSamples(later, known);
    expect(two.get(later[0]!.id)!.tools).toBe(one.get(first[0]!.id)!.tools);
    for (const row of later)
      expect(two.get(row.id)).toEqual(
        decodeSample({ ...encodeSample(sample(0)), ...row, toolsJson: row.toolsJson!, nTools: 0 }),
      );
    // A toolset cache never stands in for a toolset the page does not name: a row without tools JSON still needs its
    // toolset earlier on the same page.
    expect(() => decodePageSamples([{ ...later[0]!, toolsJson: null }], known)).toThrow(StoredSampleCorruptError);
  });

  test('a corrupt part fails with decodeSample’s error, named for the sample', () => {
    const [row] = page([sample(1)]);
    const corrupt = { ...row!, targetJson: '{"kind":"calls","calls":[]}' };
    const expected = (() => {
      try {
        decodeSample({ ...corrupt, toolsJson: row!.toolsJson!, nTools: 1 });
      } catch (err) {
        return err as Error;
      }
    })();
    expect(expected).toBeInstanceOf(StoredSampleCorruptError);
    expect(() => decodePageSamples([corrupt])).toThrow(expected!.message);
    expect(() => decodePageSamples([{ ...row!, messagesJson: '[{' }])).toThrow(StoredSampleCorruptError);
  });
});

describe('the JSON POST', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const route = req.url ?? '';
        if (route.endsWith('/ok')) res.writeHead(200, { 'content-type': 'application/json' }).end('{"a":1}');
        else if (route.endsWith('/bad'))
          res.writeHead(400, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              error: { message: 'maximum context length is 10', type: 'BadRequestError', code: 400 },
            }),
          );
        else if (route.endsWith('/busy'))
          res
            .writeHead(429, { 'retry-after': '3', 'content-type': 'application/json' })
            .end('{"error":{"message":"slow down"}}');
        else if (route.endsWith('/text')) res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream died');
        else if (route.endsWith('/hang')) return;
        else res.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const transport = createHttpTransport();
  const posts = (timeoutMs = 5_000) => ({
    transport: createJsonPost({ apiKey: 'k', timeoutMs, transport, fetch: undefined }),
    fetch: createJsonPost({ apiKey: 'k', timeoutMs, transport: undefined, fetch }),
  });
  const client = (timeoutMs = 5_000) =>
    new OpenAI({ baseURL: base, apiKey: 'k', maxRetries: 0, timeout: timeoutMs, fetch: transport.fetch });
  const failure = async (promise: Promise<unknown>) => {
    try {
      await promise;
    } catch (err) {
      const e = err as Error & { status?: number; headers?: Headers };
      return {
        type: e.constructor.name,
        message: e.message,
        status: e.status,
        retryAfter: e.headers?.get('retry-after'),
      };
    }
    throw new Error('did not fail');
  };

  test('a 2xx answer is its text', async () => {
    for (const post of Object.values(posts())) expect(await post(`${base}/ok`, '{}', undefined)).toBe('{"a":1}');
  });

  test.each(['bad', 'busy', 'text', 'missing'])('HTTP %s fails as the OpenAI client fails', async (route) => {
    const expected = await failure(client().post(`${base}/${route}`, { body: {} }));
    for (const post of Object.values(posts()))
      expect(await failure(post(`${base}/${route}`, '{}', undefined))).toEqual(expected);
  });

  test('timeouts, aborts and refused connections are the client’s errors too', async () => {
    for (const post of Object.values(posts(200))) {
      expect((await failure(post(`${base}/hang`, '{}', undefined))).type).toBe('APIConnectionTimeoutError');
      const controller = new AbortController();
      const pending = post(`${base}/hang`, '{}', controller.signal);
      controller.abort();
      expect((await failure(pending)).type).toBe('APIUserAbortError');
      expect(await failure(post('http://127.0.0.1:1/v1/x', '{}', undefined))).toMatchObject({
        type: 'APIConnectionError',
        message: 'Connection error.',
      });
    }
    expect((await failure(client(200).post(`${base}/hang`, { body: {} }))).type).toBe('APIConnectionTimeoutError');
  });
});

describe('onAbort', () => {
  test('calls what waits when the signal aborts, not what stopped waiting, and leaves no listener behind', () => {
    const controller = new AbortController();
    const signal = controller.signal;
    const called: string[] = [];
    const stopA = onAbort(signal, () => called.push('a'));
    const stopB = onAbort(signal, () => called.push('b'));
    expect(getEventListeners(signal, 'abort')).toHaveLength(1);
    stopA();
    stopB();
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
    onAbort(signal, () => called.push('c'));
    const stopD = onAbort(signal, () => called.push('d'));
    stopD();
    controller.abort();
    expect(called).toEqual(['c']);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });
});
