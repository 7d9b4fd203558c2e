import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';

/** The project's migrations: `db/migrations/NNNN_name.sql`, numbered from 0001 without gaps, immutable once applied. */
export const MIGRATIONS_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');

const FILE_PATTERN = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const NO_TRANSACTION_MARKER = /^--\s*no-transaction\s*$/m;
/** An arbitrary constant: every looptool process that migrates takes this advisory lock, so only one migrates at a time. */
const MIGRATION_LOCK_KEY = 7_356_113_001;

/** Thrown when the migrations on disk and the ones recorded in the database disagree, or one fails to apply. */
export class MigrationError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

export interface MigrationFile {
  id: number;
  name: string;
  file: string;
  sql: string;
  sha256: string;
  transactional: boolean;
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: number;
}

/** Reads and validates the migration files: names, numbering without gaps or duplicates. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): MigrationFile[] {
  const migrations: MigrationFile[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (!name.endsWith('.sql')) continue;
    const match = FILE_PATTERN.exec(name);
    if (!match)
      throw new MigrationError(`${path.join(dir, name)}: migration files are named NNNN_lower_snake_name.sql`);
    const file = path.join(dir, name);
    const sql = readFileSync(file, 'utf8');
    migrations.push({
      id: Number(match[1]),
      name,
      file,
      sql,
      sha256: createHash('sha256').update(sql).digest('hex'),
      transactional: !NO_TRANSACTION_MARKER.test(sql),
    });
  }
  migrations.forEach((migration, index) => {
    if (migration.id !== index + 1) {
      throw new MigrationError(
        `${migration.file}: expected migration number ${String(index + 1).padStart(4, '0')}; numbers start at 0001 and have no gaps or duplicates`,
      );
    }
  });
  return migrations;
}

interface AppliedRow {
  id: number;
  name: string;
  sha256: string;
}

/**
 * Brings the database up to date: each pending migration runs in its own transaction (unless the file carries a
 * `-- no-transaction` line) and is recorded with its sha256. Holds a session advisory lock throughout, so concurrent
 * workers wait for each other instead of racing. Refuses to run when an applied file was edited since, or when the
 * database records migrations this code does not have (it is ahead of the code). A second run is a no-op.
 */
export async function migrate(
  client: pg.ClientBase,
  options: { dir?: string; log?: (line: string) => void } = {},
): Promise<MigrateResult> {
  const migrations = loadMigrations(options.dir);
  const log = options.log ?? (() => {});
  await client.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
  try {
    await client.query(`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        id         integer PRIMARY KEY,
        name       text NOT NULL,
        sha256     text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
    const { rows } = await client.query<AppliedRow>('SELECT id, name, sha256 FROM schema_migrations ORDER BY id');
    const byId = new Map(migrations.map((m) => [m.id, m]));
    for (const row of rows) {
      const local = byId.get(row.id);
      if (!local) {
        throw new MigrationError(
          `The database has migration ${row.name} (id ${row.id}), which this code does not have: the database is ahead of the code. Run a newer looptool against it.`,
        );
      }
      if (local.sha256 !== row.sha256 || local.name !== row.name) {
        throw new MigrationError(
          `${local.file} was edited after it was applied (recorded ${row.name} sha256 ${row.sha256.slice(0, 12)}…, file now ${local.sha256.slice(0, 12)}…). ` +
            'Applied migrations are immutable: revert the edit and put the change in a new numbered migration.',
        );
      }
    }
    const appliedIds = new Set(rows.map((r) => r.id));
    const applied: string[] = [];
    for (const migration of migrations) {
      if (appliedIds.has(migration.id)) continue;
      await applyOne(client, migration);
      log(`applied ${migration.name}`);
      applied.push(migration.name);
    }
    return { applied, alreadyApplied: appliedIds.size };
  } finally {
    await client.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]);
  }
}

async function applyOne(client: pg.ClientBase, migration: MigrationFile): Promise<void> {
  const record = () =>
    client.query('INSERT INTO schema_migrations (id, name, sha256) VALUES ($1::int, $2::text, $3::text)', [
      migration.id,
      migration.name,
      migration.sha256,
    ]);
  try {
    if (migration.transactional) {
      await client.query('BEGIN');
      await client.query(migration.sql);
      await record();
      await client.query('COMMIT');
    } else {
      await client.query(migration.sql);
      await record();
    }
  } catch (err) {
    if (migration.transactional) await client.query('ROLLBACK').catch(() => {});
    const pgErr = err as { message?: string; position?: string };
    const line = pgErr.position ? `:${lineOf(migration.sql, Number(pgErr.position))}` : '';
    throw new MigrationError(
      `${migration.file}${line}: ${pgErr.message ?? String(err)}. ` +
        (migration.transactional
          ? 'It was rolled back; no further migrations were run.'
          : 'It ran without a transaction and may be partly applied.'),
      { cause: err },
    );
  }
}

function lineOf(text: string, position: number): number {
  return text.slice(0, Math.max(0, position - 1)).split('\n').length;
}
