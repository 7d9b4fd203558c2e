import type pg from 'pg';
import { withDatabase } from '../db/open.js';
import { startDatabase } from '../services/local-services.js';
import { cliSettings } from './settings.js';

/**
 * Runs a CLI action with the app database (`DATABASE_URL`, or the embedded PostgreSQL, started if it is not running),
 * migrated, and always closed afterwards.
 */
export async function withCliDatabase<T>(fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const { url } = await startDatabase(cliSettings());
  return withDatabase({ url, applicationName: 'looptool-cli' }, fn);
}
