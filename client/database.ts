import pg from 'pg';
import { datasetRefProblem } from '../core/names.js';
import { ImportFormat } from '../core/vocabulary.js';
import { withDatabase } from '../db/open.js';
import { DatasetVersionError, getVersion } from '../db/queries/versions.js';
import { startDatabase } from '../services/local-services.js';
import { cliSettings } from './settings.js';

/** How long a CLI command waits for PostgreSQL to accept a connection before it says it cannot reach it. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Runs a CLI action with the app database (`DATABASE_URL`, or the embedded PostgreSQL, started if it is not running),
 * migrated, and always closed afterwards. A server that cannot be reached fails within a few seconds, naming where it
 * was looked for (never the password) and what to do.
 */
export async function withCliDatabase<T>(fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const settings = cliSettings();
  const { url } = await startDatabase(settings);
  await checkReachable(url, settings.database.external);
  return withDatabase({ url, applicationName: 'looptool-cli' }, fn);
}

/**
 * One connection with a deadline before the pool is made: the pool has none (a host that drops packets would hang the
 * command for minutes), and its errors would not say which server was meant.
 */
async function checkReachable(url: string, external: boolean): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // A failed connect can still emit 'error' later; without a listener that would end the process unreported.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    // The cause's text is in the message; as a `cause` the CLI would print it a second time.
    // eslint-disable-next-line preserve-caught-error
    throw new Error(
      `cannot reach PostgreSQL at ${describeDatabaseUrl(url)} (${external ? 'DATABASE_URL' : 'the embedded PostgreSQL; set DATABASE_URL to use another'}): ${causeOf(err)}. Start the local services with \`npm run services\` or point DATABASE_URL at your server`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

/** `user@host:port/database`: where a URL points, without its password or options. */
export function describeDatabaseUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const user = parsed.username ? `${decodeURIComponent(parsed.username)}@` : '';
    return `${user}${parsed.hostname || 'localhost'}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return '(an unparsable DATABASE_URL)';
  }
}

/** An error's message; Node's AggregateError (every address of a host refused) has none of its own. */
function causeOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0)
    return [...new Set(err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))))].join('; ');
  return err instanceof Error ? err.message || err.name : String(err);
}

/**
 * Why a loop config's `data.seedDataset` cannot seed a loop (not a valid reference, not in this database, or empty),
 * with how to import it; undefined when it can. The same lookup the loop's first activity makes.
 */
export async function seedDatasetProblem(pool: pg.Pool, ref: string): Promise<string | undefined> {
  const bad = datasetRefProblem(ref);
  if (bad) return bad;
  const name = ref.replace(/@\d+$/, '');
  const importHint = `import it first: looptool data import <file> --format <${ImportFormat.options.join('|')}> --name ${name}`;
  try {
    const version = await getVersion(pool, ref);
    if ((version.memberCount ?? 0) === 0) return `dataset ${version.ref} is empty; ${importHint}`;
    return undefined;
  } catch (err) {
    if (!(err instanceof DatasetVersionError)) throw err;
    const where = pool.options.connectionString ? ` (${describeDatabaseUrl(pool.options.connectionString)})` : '';
    return `no dataset ${ref} in the database${where}; ${importHint}`;
  }
}
