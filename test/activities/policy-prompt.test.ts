import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createActivities, createActivityDeps, type Activities, type ActivityDeps } from '../../activities/index.js';
import { pickPrompt } from '../../activities/llm/prompts.js';
import { sampleToBfclRecords } from '../../core/formats/bfcl.js';
import { parseJson, stringifyJson, type JsonValue } from '../../core/json.js';
import type { ImportFormat } from '../../core/vocabulary.js';
import { exportVersion } from '../../datasets/export.js';
import { stageFile, versionFromImport } from '../../datasets/import.js';
import { getSamples } from '../../db/queries/samples.js';
import { decodeSample } from '../../db/sample-codec.js';
import { projectPath } from '../../services/paths.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { runActivity } from '../helpers/stages.js';

/**
 * One prompt everywhere: a sample of each input format, imported as `looptool data import` does it, reaches the policy
 * as the same chat through the verl parquet export, the TRL JSONL export, the probe and the evaluation. The probe and
 * evaluation requests are captured where they leave the process: at a local HTTP server standing in for the
 * OpenAI-compatible endpoint.
 */

interface CapturedRequest {
  messages: { role: string; content: string }[];
  tools?: unknown;
}

/** An OpenAI-compatible endpoint that records each chat request and answers in words. */
async function startCapture(): Promise<{ baseURL: string; requests: CapturedRequest[]; close(): Promise<void> }> {
  const requests: CapturedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      // Only chats: a route this server does not have (vLLM's /tokenize) gets vLLM's 404.
      if (!req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ detail: 'Not Found' }));
        return;
      }
      requests.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as CapturedRequest);
      const body = JSON.stringify({
        id: 'chatcmpl-capture',
        object: 'chat.completion',
        created: 0,
        model: 'policy',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: 'No function fits this request.' },
            logprobs: null,
            finish_reason: 'stop',
          },
        ],
        usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const GET_WEATHER = {
  type: 'function',
  function: {
    name: 'weather.get',
    description: 'Weather forecast',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, days: { type: 'number' } },
      required: ['city'],
    },
  },
};

/** One record per input format, each with something the others lack. */
const INPUTS: Record<ImportFormat, { file: string; text: string }> = {
  // A system prompt without a tools slot, a call with a float argument, a tool result, then a new request.
  openai: {
    file: 'openai.jsonl',
    text: stringifyJson({
      tools: [GET_WEATHER],
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Weather in Oslo for 2.5 days?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: 'c1',
              type: 'function',
              function: { name: 'weather.get', arguments: '{"city": "Oslo", "days": 2.5}' },
            },
          ],
        },
        { role: 'tool', tool_call_id: 'c1', content: '{"sky": "clear"}' },
        { role: 'user', content: 'And Bergen?' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [{ type: 'function', function: { name: 'weather.get', arguments: '{"city": "Bergen"}' } }],
        },
      ],
    }),
  },
  // ToolACE style: the tools as a JSON list inside the system prompt, the call in Python syntax.
  sharegpt: {
    file: 'sharegpt.jsonl',
    text: stringifyJson({
      system:
        'You are an expert. Here is a list of functions in JSON format that you can invoke:\n[{"name": "Get Rule Sets", "description": "r", "parameters": {"type": "dict", "properties": {"limit": {"type": "integer"}}, "required": []}}]\nShould you decide to invoke one, write it as [func(params)].',
      conversations: [
        { from: 'user', value: 'Show 5 rule sets' },
        { from: 'assistant', value: '[Get Rule Sets(limit=5)]' },
      ],
    }),
  },
  // LoopTool-23k: the tools in the instruction's slot, a pre-rendered history with two results in one turn.
  looptool: {
    file: 'looptool.jsonl',
    text: stringifyJson({
      instruction:
        'You are a helpful assistant.\n\n<tools>\n{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]}}}\n</tools>\n\nThe current time is 2025-01-01.',
      input:
        'Time in Tokyo and Paris?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "Asia/Tokyo"}}\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {"zone": "Europe/Paris"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{"time": "09:00"}\n</tool_response>\n<tool_response>\n{"time": "01:00"}\n</tool_response><|im_end|>\n<|im_start|>assistant\nTokyo 09:00, Paris 01:00.<|im_end|>\n<|im_start|>user\nAnd London?',
      output: '<tool_call>\n{"name": "get_time", "arguments": {"zone": "Europe/London"}}\n</tool_call>',
    }),
  },
  // BFCL: no system prompt, a dotted function name and BFCL types (an irrelevance question: a text target).
  bfcl: {
    file: 'bfcl.json',
    text: readFileSync(projectPath('data', 'bfcl', 'BFCL_v4_irrelevance.json'), 'utf8').split('\n')[1]!,
  },
};
const FORMATS = Object.keys(INPUTS) as (keyof typeof INPUTS)[];

let db: TestDatabase;
let scratch: string;
let capture: Awaited<ReturnType<typeof startCapture>>;
let deps: ActivityDeps;
let activities: Activities;
/** Per format: the four chats the policy is shown. */
const seen = new Map<string, Record<'verl' | 'trl' | 'probe' | 'evaluate', JsonValue>>();
/** The probe's chat for the BFCL sample with the probe system prompt on. */
let probedWithSystemPrompt: CapturedRequest | undefined;

const policy = () => ({ baseUrls: [capture.baseURL], maxConcurrency: 1, model: 'policy' });

/** The requests `run` sends, in order. */
async function requestsOf(run: () => Promise<unknown>): Promise<CapturedRequest[]> {
  const from = capture.requests.length;
  await run();
  return capture.requests.slice(from);
}

beforeAll(async () => {
  db = await createTestDatabase();
  scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-policy-prompt-'));
  capture = await startCapture();
  deps = createActivityDeps({ pool: db.pool, artifactsDir: path.join(scratch, 'artifacts') });
  activities = createActivities(deps);
  for (const loop of ['prompt', 'prompt-system'])
    await db.pool.query(
      `INSERT INTO loops (name, config, config_hash, workflow_id) VALUES ($1::text, '{}', 'test', $2::text)`,
      [loop, `loop/${loop}`],
    );

  for (const format of FORMATS) {
    const input = INPUTS[format];
    const file = path.join(scratch, input.file);
    writeFileSync(file, `${input.text}\n`);
    const staged = await stageFile({ pool: db.pool, file, format, purpose: 'import', target: format });
    expect(staged, format).toMatchObject({ staged: 1, rejected: 0 });
    const { version } = await versionFromImport(db.pool, { dataset: format, batchId: staged.batchId });
    if (!version) throw new Error(`${format}: the import made no version`);

    // The two training exports, read back as a trainer reads them.
    const parquet = path.join(scratch, `${format}.parquet`);
    const jsonl = path.join(scratch, `${format}.trl.jsonl`);
    expect(await exportVersion(db.pool, { ref: version.ref, format: 'verl-parquet', out: parquet })).toMatchObject({
      written: 1,
    });
    expect(await exportVersion(db.pool, { ref: version.ref, format: 'trl-jsonl', out: jsonl })).toMatchObject({
      written: 1,
    });
    const bytes = readFileSync(parquet);
    const [row] = (await parquetReadObjects({
      file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    })) as { prompt: JsonValue }[];
    const trlLine = parseJson(readFileSync(jsonl, 'utf8').trim());
    if (!trlLine.ok) throw new Error(trlLine.error.message);
    const trl = trlLine.value as { prompt: JsonValue; sample_id: string };

    // The probe over the version, as the loop runs it.
    const { rows } = await db.pool.query<{ lo: string; hi: string }>(
      'SELECT min(sample_seq) AS lo, max(sample_seq) AS hi FROM dataset_members WHERE version_id = $1::bigint',
      [version.id],
    );
    const batch = { afterSeq: Number(rows[0]!.lo) - 1, lastSeq: Number(rows[0]!.hi) };
    const probeInput = {
      iteration: 1,
      versionId: version.id,
      batch,
      policy: policy(),
      checker: { mode: 'exact' as const },
      maxTokens: 64,
    };
    const probe = await requestsOf(() => runActivity(activities.probeBatch, [{ ...probeInput, loopName: 'prompt' }]));
    expect(probe, format).toHaveLength(1);
    if (format === 'bfcl') {
      const system = await requestsOf(() =>
        runActivity(activities.probeBatch, [
          { ...probeInput, loopName: 'prompt-system', systemPromptVersion: 'probe-system.v1' },
        ]),
      );
      probedWithSystemPrompt = system[0];
    }

    // The evaluation, given the sample as a BFCL question file (an irrelevance id: no possible answer needed).
    const [stored] = await getSamples(db.pool, [trl.sample_id]);
    const questions = path.join(scratch, `${format}.questions.json`);
    const record = sampleToBfclRecords({ sample: decodeSample(stored!), id: `irrelevance_${FORMATS.indexOf(format)}` });
    writeFileSync(questions, `${stringifyJson(record.question)}\n`);
    const evaluation = await requestsOf(() =>
      runActivity(activities.evaluateFile, [
        { loopName: 'prompt', iteration: 1, evalSet: 'prompt', file: { questions }, policy: policy(), maxTokens: 64 },
      ]),
    );
    expect(evaluation, format).toHaveLength(1);

    for (const request of [...probe, ...evaluation])
      expect(request, `${format}: no OpenAI tools`).not.toHaveProperty('tools');
    seen.set(format, {
      verl: row!.prompt,
      trl: trl.prompt,
      probe: probe[0]!.messages as unknown as JsonValue,
      evaluate: evaluation[0]!.messages as unknown as JsonValue,
    });
  }
});

afterAll(async () => {
  await capture?.close();
  await db?.drop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

describe('one prompt everywhere', () => {
  test.each(FORMATS)(
    'a %s sample: the verl row, the TRL record, the probe and the evaluation show the same chat',
    (format) => {
      const chats = seen.get(format)!;
      expect(chats.trl).toEqual(chats.verl);
      expect(chats.probe).toEqual(chats.verl);
      expect(chats.evaluate).toEqual(chats.verl);
    },
  );

  test('the chats carry the tools in the system prompt and the history as turns', () => {
    const roles = (format: string) => (seen.get(format)!.verl as { role: string }[]).map((m) => m.role);
    const system = (format: string) => (seen.get(format)!.verl as { content: string }[])[0]!.content;
    for (const format of FORMATS) expect(system(format), format).toContain('<tools>\n{"type": "function"');
    expect(roles('openai')).toEqual(['system', 'user', 'assistant', 'user', 'user']);
    expect(system('openai')).toMatch(/^Be brief\.\n\n# Tools\n/);
    expect(roles('looptool')).toEqual(['system', 'user', 'assistant', 'user', 'assistant', 'user']);
    expect(roles('sharegpt')).toEqual(['system', 'user']);
    expect(system('sharegpt')).toContain('"name": "Get Rule Sets"');
    expect(roles('bfcl')).toEqual(['system', 'user']);
    expect(system('bfcl')).toMatch(/^# Tools\n/);
    expect(system('bfcl')).toContain('"name": "math.sum"');
  });

  test('the probe system prompt becomes the system prompt ahead of the tools, the rest of the chat unchanged', () => {
    const exported = seen.get('bfcl')!.verl as { role: string; content: string }[];
    const probeSystem = pickPrompt(deps.prompts, 'probe-system', 'probe-system.v1').system;
    expect(probedWithSystemPrompt).not.toHaveProperty('tools');
    expect(probedWithSystemPrompt!.messages).toEqual([
      { role: 'system', content: `${probeSystem}\n\n${exported[0]!.content}` },
      ...exported.slice(1),
    ]);
  });
});
