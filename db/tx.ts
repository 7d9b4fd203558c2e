import type pg from 'pg';

/** Anything that runs a query: the pool itself, or one checked-out client (inside a transaction). */
export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

/** Runs `fn` with one client checked out of the pool and always releases it. */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    return await fn(client);
  } finally {
    client.release();
  }
}

/**
 * Runs `fn` inside BEGIN/COMMIT on one client, rolling back when it throws. Every statement of a transaction must use
 * the client passed to `fn`; `pool.query` would run on another connection, outside the transaction.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (tx: pg.PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, async (client) => {
    await client.query('BEGIN');
    try {
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  });
}

/** Named SQLSTATEs, so callers branch on meaning rather than magic strings. */
export const SQLSTATE = {
  UNIQUE_VIOLATION: '23505',
  SERIALIZATION_FAILURE: '40001',
  DEADLOCK_DETECTED: '40P01',
  UNDEFINED_TABLE: '42P01',
} as const;
