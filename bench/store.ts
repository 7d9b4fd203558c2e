import { chmodSync, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { exportVersion } from '../datasets/export.js';
import { stageFile, versionFromImport } from '../datasets/import.js';
import { formatTable } from '../client/format.js';
import { startEmbeddedPostgres, stopEmbeddedPostgres } from '../services/embedded-postgres.js';
import { openDatabase } from '../db/open.js';
import { addMembers, createVersion, freezeVersion, inheritMembers, removeMembers } from '../db/queries/versions.js';
import { type Figure, perSecond } from './lib/figures.js';
import { measurePhase as phase } from './lib/measure.js';
import { postmasterPid, processTreeCpuSeconds } from './lib/process-cpu.js';

/**
 * `store` section, on a fresh embedded PostgreSQL: import rate of generated OpenAI-format files (20k and 100k distinct
 * samples, plus 5% repeated samples and 1% bad lines, to show memory stays flat as size grows), creating and freezing a
 * 1,000,000-member version that differs from its parent in 5% of its members, and export rates. Peak RSS is this
 * process's, sampled every 20 ms during each phase. An import whose counts (staged, duplicates, rejected) differ from
 * what the file holds fails the section. Targets (issue 14): import ≥ 20,000 samples/s; the 1M version < 10 s; export
 * ≥ 20,000 samples/s.
 */
export async function run(): Promise<Figure[]> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-bench-store-'));
  chmodSync(scratch, 0o755);
  const server = await startEmbeddedPostgres({
    stateDir: path.join(scratch, 'pg'),
    port: 54500 + Math.floor(Math.random() * 400),
    database: 'bench',
  });
  const pool = await openDatabase({ url: server.url, applicationName: 'looptool-bench', max: 4 });
  const postgresPid = postmasterPid(server.pgdata);
  const rows: (string | number)[][] = [];
  const figures: Figure[] = [];
  const peakRss: string[] = [];
  try {
    for (const size of [20_000, 100_000]) {
      const file = path.join(scratch, `openai-${size}.jsonl`);
      const expected = await writeOpenAiFile(file, size);
      const cpuBefore = { node: process.cpuUsage(), postgres: processTreeCpuSeconds(postgresPid) };
      const { result, seconds, peakRssMb } = await phase(async () => {
        const staged = await stageFile({ pool, file, format: 'openai', purpose: 'import', target: `bench-${size}` });
        await versionFromImport(pool, { dataset: `bench-${size}`, batchId: staged.batchId });
        return staged;
      });
      const counted = { staged: result.staged, duplicates: result.duplicates, rejected: result.rejected };
      if (JSON.stringify(counted) !== JSON.stringify(expected))
        throw new Error(
          `import of ${file} counted ${JSON.stringify(counted)}, but the file holds ${JSON.stringify(expected)}`,
        );
      rows.push([
        `import ${size.toLocaleString('en-US')} OpenAI-format samples (+5% repeats, +1% bad lines)`,
        result.staged,
        Math.round(result.staged / seconds),
        Number(seconds.toFixed(1)),
        peakRssMb,
      ]);
      peakRss.push(`${peakRssMb} MB (${size / 1000}k)`);
      if (size === 100_000) {
        figures.push({
          section: 'store',
          figure: 'import samples/s (100,000 OpenAI-format, 5% repeats, 1% bad lines)',
          value: perSecond(result.staged, seconds),
          target: '≥ 20,000/s',
          met: result.staged / seconds >= 20_000,
        });
        // Where the import's time goes: the two sides work on 2 cores at once, so the larger one bounds the rate.
        const node = process.cpuUsage(cpuBefore.node);
        const postgresAfter = processTreeCpuSeconds(postgresPid);
        const perSample = (cpuSeconds: number) => `${((cpuSeconds * 1e6) / result.staged).toFixed(0)} µs`;
        figures.push({
          section: 'store',
          figure: 'import CPU per sample: this process / PostgreSQL',
          value: `${perSample((node.user + node.system) / 1e6)} / ${
            cpuBefore.postgres === undefined || postgresAfter === undefined
              ? '?'
              : perSample(postgresAfter - cpuBefore.postgres)
          }`,
          target: 'for information',
        });
      }
    }
    for (const format of ['openai-jsonl', 'verl-parquet'] as const) {
      const out = path.join(scratch, `export.${format}`);
      const { result, seconds, peakRssMb } = await phase(
        async () => (await exportVersion(pool, { ref: 'bench-100000', format, out })).written,
      );
      rows.push([
        `export 100,000 samples as ${format}`,
        result,
        Math.round(result / seconds),
        Number(seconds.toFixed(1)),
        peakRssMb,
      ]);
      figures.push({
        section: 'store',
        figure: `export samples/s (100,000 as ${format})`,
        value: perSecond(result, seconds),
        target: '≥ 20,000/s',
        met: result / seconds >= 20_000,
      });
    }
    const million = await millionMemberVersion(pool);
    rows.push(million.row);
    figures.push({
      section: 'store',
      figure: 'create + freeze a 1,000,000-member version (5% changed)',
      value: `${million.seconds.toFixed(1)} s`,
      target: '< 10 s',
      met: million.seconds < 10,
    });
    figures.push({
      section: 'store',
      figure: 'import peak RSS as the file grows',
      value: peakRss.join(', '),
      target: 'flat (for information)',
    });
  } finally {
    await pool.end();
    await stopEmbeddedPostgres(path.join(scratch, 'pg'));
    rmSync(scratch, { recursive: true, force: true });
  }
  console.log('== store (embedded PostgreSQL 16, one process)');
  console.log(formatTable(['workload', 'items', 'items/s', 'seconds', 'peak RSS MB'], rows));
  return figures;
}

async function millionMemberVersion(pool: pg.Pool): Promise<{ row: (string | number)[]; seconds: number }> {
  // Fixture, not measured: 1,050,000 small samples written by SQL (the import path is measured above).
  await pool.query(
    `INSERT INTO toolsets (id, tools, n_tools) VALUES (repeat('0', 64), '[]', 0) ON CONFLICT DO NOTHING`,
  );
  await pool.query(
    `INSERT INTO samples (id, toolset_id, messages, target)
     SELECT encode(sha256(('bench-' || i)::bytea), 'hex'), repeat('0', 64), '[]', '{"kind":"text"}' FROM generate_series(1, 1050000) i`,
  );
  const ids = async (from: number, to: number, step = 1) =>
    (
      await pool.query<{ id: string }>(
        `SELECT encode(sha256(('bench-' || i)::bytea), 'hex') AS id FROM generate_series($1::int, $2::int, $3::int) i`,
        [from, to, step],
      )
    ).rows.map((r) => r.id);
  const parent = await createVersion(pool, { dataset: 'bench-million', idempotencyKey: 'bench-million:1' });
  await pool.query(
    `INSERT INTO dataset_members (version_id, sample_seq, role) SELECT $1::bigint, seq, 'seed' FROM samples WHERE id IN (SELECT encode(sha256(('bench-' || i)::bytea), 'hex') FROM generate_series(1, 1000000) i)`,
    [parent.id],
  );
  await freezeVersion(pool, parent.id);
  const removed = await ids(1, 1_000_000, 20);
  const added = await ids(1_000_001, 1_050_000);

  const { result, seconds, peakRssMb } = await phase(async () => {
    const child = await createVersion(pool, {
      dataset: 'bench-million',
      idempotencyKey: 'bench-million:2',
      parentId: parent.id,
    });
    await inheritMembers(pool, { versionId: child.id, fromVersionId: parent.id });
    // Each change as one set-based call: a statement per 50,000 members, not a loop of pages.
    await removeMembers(pool, child.id, removed);
    await addMembers(
      pool,
      child.id,
      added.map((sampleId) => ({ sampleId, role: 'expanded' as const })),
    );
    return (await freezeVersion(pool, child.id)).memberCount ?? 0;
  });
  return {
    row: [
      'create + freeze a 1,000,000-member version (5% changed)',
      result,
      Math.round(result / seconds),
      Number(seconds.toFixed(1)),
      peakRssMb,
    ],
    seconds,
  };
}

/** What an import of a generated file must count. */
interface ExpectedCounts {
  staged: number;
  duplicates: number;
  rejected: number;
}

/** Lines that must each be rejected, with a different reason: not JSON, no `messages`, a role OpenAI has not. */
const BAD_LINES = [
  '{"messages": [{"role": "user", "content": "cut off"',
  '{"tools": [], "conversation": [{"role": "user", "content": "hi"}]}',
  '{"messages": [{"role": "narrator", "content": "once"}, {"role": "assistant", "content": "upon a time"}]}',
];

/**
 * A generated OpenAI chat JSONL file of `count` distinct single-call samples over 40 tool schemas (about 1 KB each),
 * with a repeat of an earlier record after every 20th (5%) and a bad line after every 100th (1%). Returns the counts
 * an import must report.
 */
async function writeOpenAiFile(file: string, count: number): Promise<ExpectedCounts> {
  const stream = createWriteStream(file);
  const expected: ExpectedCounts = { staged: 0, duplicates: 0, rejected: 0 };
  const write = async (line: string) => {
    if (!stream.write(`${line}\n`)) await once(stream, 'drain');
  };
  for (let i = 0; i < count; i++) {
    await write(JSON.stringify(openAiRecord(i)));
    expected.staged++;
    if (i % 20 === 19) {
      await write(JSON.stringify(openAiRecord(i - 10)));
      expected.duplicates++;
    }
    if (i % 100 === 99) {
      await write(BAD_LINES[((i + 1) / 100) % BAD_LINES.length]!);
      expected.rejected++;
    }
  }
  stream.end();
  await once(stream, 'finish');
  return expected;
}

function openAiRecord(i: number) {
  const cities = ['Paris', 'Lima', 'Osaka', 'Cairo', 'Oslo', 'Quito', 'Perth', 'Accra'];
  const tool = i % 40;
  return {
    tools: [0, 1, 2].map((offset) => ({
      type: 'function',
      function: {
        name: `tool_${(tool + offset) % 40}`,
        description: `Looks up item ${(tool + offset) % 40} for a city`,
        parameters: {
          type: 'object',
          properties: {
            city: { type: 'string', description: 'City name' },
            days: { type: 'integer' },
            metric: { type: 'boolean' },
          },
          required: ['city'],
        },
      },
    })),
    messages: [
      { role: 'system', content: 'You are a helpful assistant with tools.' },
      { role: 'user', content: `Request ${i}: look up ${cities[i % cities.length]} for ${i % 14} days.` },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: `call_${i}`,
            type: 'function',
            function: {
              name: `tool_${tool}`,
              arguments: JSON.stringify({ city: cities[i % cities.length], days: i % 14, metric: i % 2 === 0 }),
            },
          },
        ],
      },
    ],
  };
}
