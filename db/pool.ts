import pg from 'pg';

export interface PoolOptions {
  connectionString: string;
  /** @default 10 */
  max?: number;
  applicationName?: string;
}

/**
 * Creates a pool with error handlers on the pool and on each client: without them an idle client's error (a restarted
 * server, a dropped connection) is an unhandled 'error' event and takes the whole worker down. The caller owns `end()`.
 */
export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    // A server that does not answer at all (a dead host, a dropped route) fails the connect instead of hanging it:
    // the activity then retries, and the loop shows what it waits for.
    connectionTimeoutMillis: 30_000,
    application_name: options.applicationName ?? 'looptool',
  });
  pool.on('error', (err) => {
    console.error(`[db] idle client error (the pool will reconnect): ${err.message}`);
  });
  pool.on('connect', (client) => {
    client.on('error', (err) => console.error(`[db] client error: ${err.message}`));
  });
  return pool;
}
