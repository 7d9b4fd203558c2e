import type { Queryable } from '../tx.js';

/** Column name → PostgreSQL type, per table, read once per process (the schema is fixed by the migrations). */
const columnTypes = new Map<string, Promise<Map<string, string>>>();

function typesOf(q: Queryable, table: string): Promise<Map<string, string>> {
  let types = columnTypes.get(table);
  if (!types) {
    types = q
      .query<{ name: string; type: string }>(
        `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
         WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
        [table],
      )
      .then(({ rows }) => new Map(rows.map((r) => [r.name, r.type])));
    columnTypes.set(table, types);
    types.catch(() => columnTypes.delete(table));
  }
  return types;
}

/** `sampleId` → `sample_id`: row types name their columns in camelCase. */
const snakeCase = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * Writes many rows into `table` in one statement (`INSERT … SELECT … FROM unnest($n::type[], …)`): one round trip and
 * one plan per page, whatever its size. Each row property is the column of the same name in snake_case, typed as the
 * table declares it, so a row type names its columns once; json columns take text as is (canonical JSON stays byte
 * for byte) and anything else JSON-encoded. `shared` holds values every row has (the stage key), and `onConflict` the
 * natural-key rule that makes a retried write a no-op or an update. Returns the rows written.
 */
export async function insertRows<R extends object>(
  q: Queryable,
  table: string,
  rows: readonly R[],
  options: { shared?: Record<string, unknown>; onConflict: string },
): Promise<number> {
  if (rows.length === 0) return 0;
  const { sql, params } = await insertRowsStatement(q, table, rows, options);
  return (await q.query(sql, params)).rowCount ?? 0;
}

/**
 * The statement {@link insertRows} runs, with its parameters numbered from `firstParam` (default 1), for callers that
 * join several such inserts into one statement (data-modifying CTEs): one round trip, atomic without a transaction.
 * `rows` must not be empty.
 */
export async function insertRowsStatement<R extends object>(
  q: Queryable,
  table: string,
  rows: readonly R[],
  options: { shared?: Record<string, unknown>; onConflict: string },
  firstParam = 1,
): Promise<{ sql: string; params: unknown[] }> {
  const types = await typesOf(q, table);
  const typeOf = (column: string) => {
    const type = types.get(column);
    if (!type) throw new Error(`${table} has no column ${column}`);
    return type;
  };
  const shared = Object.entries(options.shared ?? {}).map(([column, value]) => ({
    column,
    type: typeOf(column),
    value,
  }));
  const columns = Object.keys(rows[0]!).map((key) => ({ key, column: snakeCase(key), type: typeOf(snakeCase(key)) }));
  const encode = (type: string, value: unknown) =>
    (type === 'json' || type === 'jsonb') && value !== null && typeof value !== 'string'
      ? JSON.stringify(value)
      : value;
  const at = firstParam - 1;
  const sql =
    `INSERT INTO ${table} (${[...shared, ...columns].map((c) => c.column).join(', ')}) ` +
    `SELECT ${[...shared.map((c, i) => `$${at + i + 1}::${c.type}`), '*'].join(', ')} ` +
    `FROM unnest(${columns.map((c, i) => `$${at + shared.length + i + 1}::${c.type}[]`).join(', ')}) ${options.onConflict}`;
  const params = [
    ...shared.map((c) => c.value),
    ...columns.map((c) => rows.map((row) => encode(c.type, (row as Record<string, unknown>)[c.key]))),
  ];
  return { sql, params };
}
