import type pg from 'pg';

/** Everything activities need from the outside world, built once in worker/main.ts and passed in (never imported). */
export interface ActivityDeps {
  pool: pg.Pool;
}
