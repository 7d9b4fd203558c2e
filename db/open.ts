import type pg from 'pg';
import { migrate } from './migrate.js';
import { createPool } from './pool.js';
import { withClient } from './tx.js';

export interface OpenDatabaseOptions {
  url: string;
  /** Shown in `pg_stat_activity`, so an operator sees which process holds a connection. */
  applicationName: string;
  /** @default 10 */
  max?: number;
  /** Apply pending migrations first (under the migration lock, so concurrent openers wait for each other). @default true */
  migrate?: boolean;
  log?: (line: string) => void;
}

/**
 * The one way a looptool process opens the app database: a pool with error handlers (db/pool.ts), migrated to this
 * code's schema unless told otherwise. The pool is closed again if migrating fails; otherwise the caller owns `end()`.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<pg.Pool> {
  const pool = createPool({
    connectionString: options.url,
    applicationName: options.applicationName,
    ...(options.max ? { max: options.max } : {}),
  });
  if (options.migrate ?? true) {
    try {
      await withClient(pool, (client) => migrate(client, options.log ? { log: options.log } : {}));
    } catch (err) {
      await pool.end();
      throw err;
    }
  }
  return pool;
}

/** Runs `fn` with a database opened by {@link openDatabase} that is always closed afterwards. */
export async function withDatabase<T>(options: OpenDatabaseOptions, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = await openDatabase(options);
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}
