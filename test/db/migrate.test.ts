import { cpSync, mkdtempSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, test } from 'vitest';
import { loadMigrations, migrate, MigrationError, MIGRATIONS_DIR } from '../../db/migrate.js';
import { withClient } from '../../db/tx.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

describe('migrate', () => {
  const databases: TestDatabase[] = [];
  let scratch: string;

  const freshDatabase = async () => {
    const db = await createTestDatabase({ migrated: false });
    databases.push(db);
    return db;
  };
  const run = (db: TestDatabase, dir = MIGRATIONS_DIR) => withClient(db.pool, (client) => migrate(client, { dir }));
  const copyOfMigrations = () => {
    const dir = path.join(scratch, `migrations-${Math.random().toString(36).slice(2)}`);
    cpSync(MIGRATIONS_DIR, dir, { recursive: true });
    return dir;
  };

  // Extra files take the numbers after the project's own migrations, so these tests hold as migrations are added.
  const existing = loadMigrations();
  const extraName = (offset: number, name: string) =>
    `${String(existing.length + offset).padStart(4, '0')}_${name}.sql`;

  beforeEach(() => {
    scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-migrations-'));
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));
  afterAll(async () => {
    for (const db of databases) await db.drop();
  });

  test('applies every migration to an empty database and records each with its sha256', async () => {
    const db = await freshDatabase();
    const result = await run(db);
    const files = loadMigrations();
    expect(result).toEqual({ applied: files.map((f) => f.name), alreadyApplied: 0 });
    const { rows } = await db.pool.query('SELECT id, name, sha256 FROM schema_migrations ORDER BY id');
    expect(rows).toEqual(files.map((f) => ({ id: f.id, name: f.name, sha256: f.sha256 })));
    const tables = await db.pool.query("SELECT to_regclass('public.loops') AS loops");
    expect(tables.rows[0].loops).toBe('loops');
  });

  test('a second run is a no-op', async () => {
    const db = await freshDatabase();
    await run(db);
    const again = await run(db);
    expect(again).toEqual({ applied: [], alreadyApplied: loadMigrations().length });
  });

  test('two workers migrating at once apply each migration exactly once (advisory lock)', async () => {
    const db = await freshDatabase();
    const [a, b] = await Promise.all([run(db), run(db)]);
    expect([...a.applied, ...b.applied].sort()).toEqual(
      loadMigrations()
        .map((f) => f.name)
        .sort(),
    );
    const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM schema_migrations');
    expect(rows[0].n).toBe(loadMigrations().length);
  });

  test('refuses an applied migration whose file was edited, naming the file', async () => {
    const db = await freshDatabase();
    const dir = copyOfMigrations();
    await run(db, dir);
    appendFileSync(path.join(dir, '0001_loops.sql'), '\nALTER TABLE loops ADD COLUMN sneaky int;\n');
    const attempt = run(db, dir);
    await expect(attempt).rejects.toThrow(MigrationError);
    await expect(attempt).rejects.toThrow(/0001_loops\.sql was edited after it was applied.*immutable/s);
    const columns = await db.pool.query(
      "SELECT 1 FROM information_schema.columns WHERE table_name = 'loops' AND column_name = 'sneaky'",
    );
    expect(columns.rowCount).toBe(0);
  });

  test('refuses a database that is ahead of the code', async () => {
    const db = await freshDatabase();
    const dir = copyOfMigrations();
    writeFileSync(path.join(dir, extraName(1, 'future')), 'CREATE TABLE future (id int);\n');
    await run(db, dir);
    await expect(run(db)).rejects.toThrow(new RegExp(`${extraName(1, 'future')}.*ahead of the code`));
  });

  test('a failing migration is rolled back whole, reported with file and line, and stops the run', async () => {
    const db = await freshDatabase();
    const dir = copyOfMigrations();
    writeFileSync(
      path.join(dir, extraName(1, 'broken')),
      'CREATE TABLE half (id int);\n\nSELECT no_such_column FROM half;\n',
    );
    writeFileSync(path.join(dir, extraName(2, 'after')), 'CREATE TABLE after_broken (id int);\n');
    await expect(run(db, dir)).rejects.toThrow(
      new RegExp(`${extraName(1, 'broken')}:3: column "no_such_column" does not exist.*rolled back`, 's'),
    );
    const leftovers = await db.pool.query(
      "SELECT to_regclass('public.half') AS half, to_regclass('public.after_broken') AS after",
    );
    expect(leftovers.rows[0]).toEqual({ half: null, after: null });
    const { rows } = await db.pool.query('SELECT name FROM schema_migrations ORDER BY id');
    expect(rows.map((r) => r.name)).toEqual(existing.map((m) => m.name));
  });

  test('rejects badly named files and gaps in the numbering before touching the database', () => {
    const badName = copyOfMigrations();
    writeFileSync(path.join(badName, '2_oops.sql'), 'SELECT 1;');
    expect(() => loadMigrations(badName)).toThrow(/2_oops\.sql: migration files are named NNNN_lower_snake_name\.sql/);
    const gap = copyOfMigrations();
    writeFileSync(path.join(gap, extraName(2, 'skipped')), 'SELECT 1;');
    expect(() => loadMigrations(gap)).toThrow(
      new RegExp(`${extraName(2, 'skipped')}: expected migration number ${extraName(1, '').slice(0, 4)}`),
    );
  });

  test('a -- no-transaction migration runs outside a transaction (CREATE INDEX CONCURRENTLY works)', async () => {
    const db = await freshDatabase();
    const dir = copyOfMigrations();
    writeFileSync(
      path.join(dir, extraName(1, 'concurrent_index')),
      '-- no-transaction\nCREATE INDEX CONCURRENTLY loops_created_at ON loops (created_at);\n',
    );
    expect(loadMigrations(dir).at(-1)?.transactional).toBe(false);
    expect(existing.every((m) => m.transactional)).toBe(true);
    await run(db, dir);
    const { rowCount } = await db.pool.query("SELECT 1 FROM pg_indexes WHERE indexname = 'loops_created_at'");
    expect(rowCount).toBe(1);
  });
});
