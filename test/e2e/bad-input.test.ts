import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection, Client, WorkflowNotFoundError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { workflowIds } from '../../core/constants.js';
import { openAiChatToSamples } from '../../core/formats/index.js';
import { parseJson } from '../../core/json.js';
import { getSamples } from '../../db/queries/samples.js';
import { openStagingBatch } from '../../db/queries/staging.js';
import { encodeSample } from '../../db/sample-codec.js';
import { LOOPTOOL_BIN, runLooptool } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/loop-fixture.js';

const BAD = fileURLToPath(new URL('../fixtures/bad/', import.meta.url));
const fixture = (name: string) => path.join(BAD, name);
/** The file the hostile shell strings would create if anything ran them. */
const PWNED = '/tmp/looptool-bad-input-pwned';

/**
 * The data fixtures of test/fixtures/bad/ through `looptool data import`: the lines each must reject (with what the
 * message must say after `file:line: `) and the lines whose samples must all be stored.
 */
const DATA_FIXTURES: Record<string, { args?: string[]; rejected: [number, RegExp][]; stored: number[] }> = {
  'malformed.jsonl': {
    rejected: [
      [2, /^invalid JSON: unexpected end of input \(column \d+\)$/],
      [4, /^invalid JSON: .*\(column 2\)$/],
      [5, /^invalid JSON: .*\(column \d+\)$/],
      [6, /^invalid JSON: unexpected character "n" \(column 1\)$/],
      [9, /^invalid JSON: unexpected character "}" \(column 1\)$/],
    ],
    stored: [1, 3, 8],
  },
  'truncated.jsonl': { rejected: [[3, /^invalid JSON: unexpected end of input/]], stored: [1, 2] },
  'invalid-utf8.jsonl': {
    rejected: [2, 4, 5, 6].map((line) => [line, /^invalid UTF-8 at byte \d+ of the line \(file byte \d+\)$/]),
    stored: [1, 3, 7],
  },
  'huge-line.jsonl': {
    args: ['--max-line-chars', '10000'],
    rejected: [[2, /^line is longer than 10000 characters$/]],
    stored: [1, 3, 4],
  },
  'wrong-types.jsonl': {
    rejected: [
      [1, /^tools: /],
      [2, /^messages: must be an array$/],
      [3, /^messages\[0\]\.content: /],
      [4, /^messages\[1\]\.tool_calls\[0\]\.function\.arguments: /],
      [5, /^messages\[0\]\.role: /],
      [7, /^a record must be a JSON object$/],
      [8, /^a record must be a JSON object$/],
      [9, /^a record must be a JSON object$/],
    ],
    stored: [6],
  },
  'invalid-tool-schemas.jsonl': {
    rejected: [
      [1, /^tools\[0\]\.function\.parameters\.type: /],
      [2, /^tools\[0\]\.function\.name: /],
      [3, /^tools\[0\]\.function\.parameters\.properties: /],
      [4, /^tools\[0\]\.function\.parameters\.properties\.city\.type: /],
      [5, /^tools\[0\]/],
      [7, /^tools\[0\]\.function\.parameters\.required: /],
      // A key holding an ANSI escape and a bidi override: printed escaped, never acting on the terminal.
      [8, /^tools\[0\]\.function\.parameters\.properties\.\\u001b\[2J\\u202ecity\.type: /],
    ],
    stored: [6],
  },
  'hostile-strings.jsonl': { rejected: [], stored: [1, 2, 3, 4, 5, 6] },
};

const NAMES = JSON.parse(readFileSync(fixture('names.json'), 'utf8')) as { loop: string[]; dataset: string[] };

describe('bad input through the CLI (test/fixtures/bad/)', () => {
  let db: TestDatabase;
  let scratch: string;
  let env: NodeJS.ProcessEnv;
  const cli = (...args: string[]) => runLooptool(args, { env });
  const stagingCount = async () => Number((await db.pool.query('SELECT count(*) FROM staging_batches')).rows[0].count);

  beforeAll(async () => {
    db = await createTestDatabase();
    scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-bad-input-'));
    env = { ...process.env, DATABASE_URL: db.url, TEMPORAL_ADDRESS: inject('temporalAddress') };
    rmSync(PWNED, { force: true });
  });
  afterAll(async () => {
    await db?.drop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  test('every fixture is listed in the folder README and used by a test here or in the unit tests', () => {
    const readme = readFileSync(fixture('README.md'), 'utf8');
    const files = readdirSync(BAD).filter((f) => f !== 'README.md');
    for (const file of files) expect(readme, file).toContain(`\`${file}\``);
    const used = new Set([...Object.keys(DATA_FIXTURES), 'names.json']);
    for (const file of files.filter((f) => !f.startsWith('config-'))) expect(used.has(file), file).toBe(true);
  });

  test.each(Object.entries(DATA_FIXTURES))(
    '%s: each bad line is rejected with file, line and field; every good line is stored',
    async (name, expected) => {
      const file = fixture(name);
      const dataset = `bad-${name.replace(/\.jsonl$/, '')}`;
      const result = await cli(
        'data',
        'import',
        file,
        '--format',
        'openai',
        '--name',
        dataset,
        ...(expected.args ?? []),
      );
      expect(result.code, result.stderr).toBe(expected.rejected.length > 0 ? 1 : 0);

      // Whatever the data holds, what is printed is plain text: no control or bidi character reaches the terminal.
      expect([...result.stderr].filter((c) => /[\p{Cc}\u202a-\u202e]/u.test(c) && c !== '\n')).toEqual([]);
      const reported = result.stderr.split('\n').filter(Boolean);
      expect(reported).toHaveLength(expected.rejected.length);
      expected.rejected.forEach(([line, reason], i) => {
        const prefix = `${file}:${line}: `;
        expect(reported[i]!.startsWith(prefix), reported[i]).toBe(true);
        expect(reported[i]!.slice(prefix.length)).toMatch(reason);
      });

      // What the database holds: the rejections as data, and a member for every good line, in a version.
      const { rows } = await db.pool.query<{ id: string }>('SELECT id FROM staging_batches WHERE target = $1', [
        dataset,
      ]);
      expect(rows).toHaveLength(1);
      const batch = rows[0]!.id;
      const lines = async (table: string) =>
        (
          await db.pool.query<{ line: number }>(`SELECT line FROM ${table} WHERE batch_id = $1 ORDER BY line`, [batch])
        ).rows.map((r) => r.line);
      expect(await lines('staging_rejections')).toEqual(expected.rejected.map(([line]) => line));
      expect(await lines('staging_members')).toEqual(expected.stored);
      expect(result.stdout).toContain(`${dataset}@1: ${expected.stored.length} samples`);
    },
  );

  test('hostile strings are stored byte for byte as inert data: nothing ran, nothing was dropped, nothing printed raw', async () => {
    const file = fixture('hostile-strings.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(lines).toHaveLength(6);
    for (const [i, line] of lines.entries()) {
      const record = parseJson(line);
      if (!record.ok) throw new Error(`line ${i + 1}: ${record.error.message}`);
      const converted = openAiChatToSamples(record.value);
      if (!converted.ok) throw new Error(`line ${i + 1}: ${converted.rejection.reason}`);
      const expected = encodeSample(converted.value[0]!);
      const [stored] = await getSamples(db.pool, [expected.id]);
      expect(stored, `line ${i + 1} stored`).toBeDefined();
      // The JSON text in the database is exactly the text the converter made: no escaping added, nothing stripped.
      expect(stored!.messagesJson, `line ${i + 1}`).toBe(expected.messagesJson);
      expect(stored!.toolsJson, `line ${i + 1}`).toBe(expected.toolsJson);
      expect(stored!.targetJson, `line ${i + 1}`).toBe(expected.targetJson);
      // And the user's text reads back as it was written, SQL, shell, control characters and lone surrogate included.
      const userText = (JSON.parse(line) as { messages: { role: string; content: string }[] }).messages.find(
        (m) => m.role === 'user',
      )!.content;
      const storedUser = (JSON.parse(stored!.messagesJson) as { role: string; content: unknown }[]).find(
        (m) => m.role === 'user',
      )!.content;
      expect(JSON.stringify(storedUser)).toContain(JSON.stringify(userText).slice(1, -1));
    }
    // The SQL in the data did not run: every table it names still has its rows.
    for (const table of ['samples', 'dataset_members', 'staging_batches'])
      expect(Number((await db.pool.query(`SELECT count(*) FROM ${table}`)).rows[0].count), table).toBeGreaterThan(0);
    // The shell in the data did not run.
    expect(existsSync(PWNED)).toBe(false);
    // Printing a version never sends the data's escape sequences to the terminal raw.
    const shown = await cli('data', 'show', 'bad-hostile-strings@1', '--samples', '6');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain("Robert'); DROP TABLE samples; --");
    for (const raw of ['\u0000', '\u001b', '\u202e'])
      expect(shown.stdout.includes(raw), JSON.stringify(raw)).toBe(false);
  });

  test('bad dataset names are refused with the rule before the file is read: no staging batch is made', async () => {
    const before = await stagingCount();
    await eachInParallel(NAMES.dataset, async (name) => {
      // A file that does not exist: the name's error comes first, so nothing tried to read it.
      const result = await cli(
        'data',
        'import',
        path.join(scratch, 'missing.jsonl'),
        '--format',
        'openai',
        `--name=${name}`,
      );
      expect(result.code, name).toBe(1);
      expect(result.stderr, name).toContain(
        `invalid dataset name ${JSON.stringify(name)}: use lowercase letters, digits, ".", "_" and "-", starting with a letter or digit; at most 63 characters`,
      );
    });
    // And with a real file: refused the same way, nothing staged (the database's CHECK used to refuse it at the end).
    const result = await cli('data', 'import', fixture('malformed.jsonl'), '--format', 'openai', '--name', 'Seed/../x');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/invalid dataset name "Seed\/\.\.\/x": use lowercase letters/);
    expect(result.stderr).not.toMatch(/violates check constraint/);
    expect(await stagingCount()).toBe(before);
  });

  test('bad loop names are refused with the rule by inject and loop start, before any file is read', async () => {
    const before = await stagingCount();
    await eachInParallel(NAMES.loop, async (name) => {
      const injected = await cli('inject', '--format', 'openai', '--', name, path.join(scratch, 'missing.jsonl'));
      expect(injected.code, name).toBe(1);
      expect(injected.stderr, name).toContain(`invalid loop name ${JSON.stringify(name)}: use lowercase letters`);
      const started = await cli('loop', 'start', '--config', path.join(scratch, 'missing.yaml'), `--name=${name}`);
      expect(started.code, name).toBe(1);
      expect(started.stderr, name).toContain(`invalid loop name ${JSON.stringify(name)}: use lowercase letters`);
    });
    expect(await stagingCount()).toBe(before);
  });

  test('numeric options that are not numbers, or out of range, are refused; nothing is imported', async () => {
    const before = await stagingCount();
    for (const value of ['abc', '0', '-5', '1e3', '12abc', '']) {
      const result = await cli(
        'data',
        'import',
        fixture('huge-line.jsonl'),
        '--format',
        'openai',
        '--name',
        'numbers',
        `--max-line-chars=${value}`,
      );
      expect(result.code, value).toBe(1);
      expect(result.stderr, value).toContain(
        `option '--max-line-chars <n>' argument '${value}' is invalid. expected a whole number of at least 1, got ${JSON.stringify(value)}`,
      );
    }
    expect(await stagingCount()).toBe(before);
    const show = await cli('data', 'show', 'bad-malformed@1', '--samples', 'lots');
    expect(show.code).toBe(1);
    expect(show.stderr).toContain(
      `option '--samples <n>' argument 'lots' is invalid. expected a whole number from 0 to 1000`,
    );
    const staging = await cli('data', 'staging', '--expire-after', 'soon');
    expect(staging.code).toBe(1);
    expect(staging.stderr).toContain(`argument 'soon' is invalid. expected a number from 0 to`);
  });

  test('every bad config is refused by loop start with its problems located, before anything starts', async () => {
    const client = new Client({ connection: await Connection.connect({ address: inject('temporalAddress') }) });
    try {
      for (const name of readdirSync(BAD).filter((f) => f.startsWith('config-') && f !== 'config-missing-seed.yaml')) {
        const file = fixture(name);
        const result = await cli('loop', 'start', '--config', file);
        expect(result.code, name).toBe(1);
        expect(result.stderr, name).toContain(`${file}: invalid loop config:\n  - `);
        // Every problem is located: a line, or a path with a line.
        for (const problem of result.stderr.split('\n').filter((l) => l.startsWith('  - ')))
          expect(problem, name).toMatch(/line \d+/);
      }
      // The unknown key would have run the default 4 iterations: its loop was never started.
      const unknown = await client.workflow
        .getHandle(workflowIds.loop('bad-unknown-key'))
        .describe()
        .catch((err: unknown) => err);
      expect(unknown).toBeInstanceOf(WorkflowNotFoundError);
    } finally {
      await client.connection.close();
    }
  });

  test('loop start refuses a seed dataset that is not in the database, naming it and how to import it; no workflow starts', async () => {
    const name = `missing-seed-${randomBytes(4).toString('hex')}`;
    const file = fixture('config-missing-seed.yaml');
    const result = await cli('loop', 'start', '--config', file, '--name', name);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}: data.seedDataset: no dataset never-imported in the database (`);
    expect(result.stderr).toContain(
      'import it first: looptool data import <file> --format <openai|sharegpt|looptool|bfcl> --name never-imported',
    );
    const connection = await Connection.connect({ address: inject('temporalAddress') });
    try {
      const described = await new Client({ connection }).workflow
        .getHandle(workflowIds.loop(name))
        .describe()
        .catch((err: unknown) => err);
      expect(described).toBeInstanceOf(WorkflowNotFoundError);
    } finally {
      await connection.close();
    }
  });

  test('abandoned staging batches expire: a killed import, a dead loader, an idle one; live ones stay; data staging lists them', async () => {
    // An import that certainly dies mid-file: it reads a pipe the test holds open, is seen loading, then is killed.
    const fifo = path.join(scratch, 'slow.jsonl');
    await new Promise<void>((resolve, reject) =>
      spawn('mkfifo', [fifo]).on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`mkfifo: ${code}`)))),
    );
    const child = spawn(
      process.execPath,
      [LOOPTOOL_BIN, 'data', 'import', fifo, '--format', 'openai', '--name', 'killed'],
      {
        env,
        stdio: 'ignore',
      },
    );
    const writer = await open(fifo, 'w');
    await writer.write(`${readFileSync(fixture('malformed.jsonl'), 'utf8').split('\n')[0]}\n`);
    const killedBatch = await waitFor('the import to open its batch', async () => {
      const { rows } = await db.pool.query<{ id: string; status: string }>(
        `SELECT id, status FROM staging_batches WHERE target = 'killed'`,
      );
      return rows[0];
    });
    expect(killedBatch.status).toBe('loading');
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    await writer.close();

    // A batch whose loader on this host is gone (a process that has exited), one idle for three days on another host,
    // one recent on another host, and one this test process holds (alive).
    const dead = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => dead.on('exit', resolve));
    const open_ = (id: string, loader: { host: string; pid: number }) =>
      openStagingBatch(db.pool, {
        id,
        purpose: 'import',
        target: 'staged',
        source: `${id}.jsonl`,
        format: 'openai',
        loader,
      });
    await open_('import-dead-loader', { host: os.hostname(), pid: dead.pid! });
    await open_('import-idle-elsewhere', { host: 'elsewhere.example', pid: 1 });
    await db.pool.query(
      `UPDATE staging_batches SET updated_at = now() - interval '3 days' WHERE id = 'import-idle-elsewhere'`,
    );
    await open_('import-busy-elsewhere', { host: 'elsewhere.example', pid: 2 });
    await open_('import-alive-here', { host: os.hostname(), pid: process.pid });

    // The next import expires what is certainly abandoned before it starts, and says so.
    // (A limit of 100 hours: the idle batch is left for `data staging` below.)
    const next = await cli(
      ...['data', 'import', fixture('truncated.jsonl'), '--format', 'openai', '--name', 'after-kill'],
      ...['--expire-after', '100'],
    );
    expect(next.stdout).toContain(
      `Expired abandoned staging batch ${killedBatch.id}: its import (process ${child.pid} on ${os.hostname()}) is gone.`,
    );
    expect(next.stdout).toContain(
      `Expired abandoned staging batch import-dead-loader: its import (process ${dead.pid} on ${os.hostname()}) is gone.`,
    );
    expect(next.stdout).toContain('after-kill@1: 2 samples');

    // `data staging` with a two-day limit expires the idle one, and lists every batch with its state.
    const listed = await cli('data', 'staging', '--expire-after', '48', '--json');
    expect(listed.code).toBe(0);
    const { expired, batches } = JSON.parse(listed.stdout) as {
      expired: { id: string; reason: string }[];
      batches: { id: string; status: string; purpose: string; target: string; source: string; expiryReason: string }[];
    };
    expect(expired).toEqual([
      { id: 'import-idle-elsewhere', reason: 'nothing was written to it for 3 d 0 h (limit 2 d 0 h)' },
    ]);
    const status = Object.fromEntries(batches.map((b) => [b.id, b.status]));
    expect(status).toMatchObject({
      [killedBatch.id]: 'expired',
      'import-dead-loader': 'expired',
      'import-idle-elsewhere': 'expired',
      'import-busy-elsewhere': 'loading',
      'import-alive-here': 'loading',
    });
    expect(batches.find((b) => b.id === killedBatch.id)).toMatchObject({
      purpose: 'import',
      target: 'killed',
      source: fifo,
    });
    const table = await cli('data', 'staging');
    expect(table.stdout).toMatch(
      /^id\s+purpose\s+target\s+source\s+format\s+status\s+samples\s+dupes\s+rejected\s+age/,
    );
    expect(table.stdout).toMatch(
      new RegExp(`${killedBatch.id}\\s+import\\s+killed\\s+\\S+slow\\.jsonl\\s+openai\\s+expired`),
    );
    expect(table.stdout).toMatch(/import-alive-here .* loading .* loading by process \d+/);
  });

  test('with the services down, commands fail within seconds naming the address, the variable and what to do', async () => {
    const port = await freePort();
    const temporal = await runLooptool(['loop', 'status', 'any'], {
      env: { ...env, TEMPORAL_ADDRESS: `127.0.0.1:${port}` },
    });
    expect(temporal.code).toBe(1);
    expect(temporal.stderr).toContain(`cannot reach Temporal at 127.0.0.1:${port} (TEMPORAL_ADDRESS): `);
    expect(temporal.stderr).toContain(
      'Start the local services with `npm run services` or point TEMPORAL_ADDRESS at your server',
    );

    const postgres = await runLooptool(['data', 'versions'], {
      env: { ...env, DATABASE_URL: `postgres://looptool:s3cret-pw@127.0.0.1:${port}/nowhere` },
    });
    expect(postgres.code).toBe(1);
    expect(postgres.stderr).toContain(`cannot reach PostgreSQL at looptool@127.0.0.1:${port}/nowhere (DATABASE_URL): `);
    expect(postgres.stderr).toContain('ECONNREFUSED');
    expect(postgres.stderr).toContain(
      'Start the local services with `npm run services` or point DATABASE_URL at your server',
    );
    expect(postgres.stderr).not.toContain('s3cret-pw');
  });
});

/** Runs `fn` for each item, a few at a time: each is a CLI process, and one after another they take half a minute. */
async function eachInParallel<T>(items: readonly T[], fn: (item: T) => Promise<void>, width = 3): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
    }),
  );
}
