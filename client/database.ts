import path from 'node:path';
import type pg from 'pg';
import { startEmbeddedPostgres } from '../db/embedded-server.js';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { withClient } from '../db/tx.js';
import { localServicesSettings } from './services/local-services.js';

/**
 * The app database for a CLI command: `DATABASE_URL` when set, otherwise the embedded PostgreSQL (started if it is not
 * running, so `looptool data import` works on a fresh laptop with no other step), migrated either way.
 */
export async function openDatabase(env: NodeJS.ProcessEnv = process.env): Promise<pg.Pool> {
  const settings = localServicesSettings(env);
  const url =
    settings.externalDatabaseUrl ??
    (await startEmbeddedPostgres({ stateDir: path.join(settings.dataDir, 'postgres'), port: settings.postgresPort })).url;
  const pool = createPool({ connectionString: url, applicationName: 'looptool-cli' });
  try {
    await withClient(pool, (client) => migrate(client));
  } catch (err) {
    await pool.end();
    throw err;
  }
  return pool;
}

/** Runs a CLI action with a database pool that is always closed afterwards. */
export async function withDatabase<T>(fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = await openDatabase();
  try {
    return await fn(pool);
  } finally {
    await pool.end();
  }
}
