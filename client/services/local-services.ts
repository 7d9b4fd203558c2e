import path from 'node:path';
import {
  DEFAULT_EMBEDDED_POSTGRES_PORT,
  isEmbeddedPostgresRunning,
  startEmbeddedPostgres,
  stopEmbeddedPostgres,
} from '../../db/embedded-server.js';
import { dataDir } from './paths.js';
import { resolveTemporalCli } from './temporal-cli.js';
import {
  DEFAULT_TEMPORAL_PORT,
  DEFAULT_TEMPORAL_UI_PORT,
  isTemporalHealthy,
  startTemporalDevServer,
  stopTemporalDevServer,
  temporalDevServerPid,
} from './temporal-dev-server.js';

/** Where the embedded default's services live and listen. Every field has an env override for side-by-side setups. */
export interface LocalServicesSettings {
  dataDir: string;
  temporalPort: number;
  temporalUiPort: number;
  postgresPort: number;
  /** Set: use this Temporal frontend and start none (`TEMPORAL_ADDRESS`). */
  externalTemporalAddress?: string;
  /** Set: use this database and start none (`DATABASE_URL`). */
  externalDatabaseUrl?: string;
}

export function localServicesSettings(env: NodeJS.ProcessEnv = process.env): LocalServicesSettings {
  const port = (name: string, fallback: number) => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value <= 0 || value > 65535) throw new Error(`${name}=${raw}: expected a TCP port`);
    return value;
  };
  return {
    dataDir: dataDir(env),
    temporalPort: port('LOOPTOOL_TEMPORAL_PORT', DEFAULT_TEMPORAL_PORT),
    temporalUiPort: port('LOOPTOOL_TEMPORAL_UI_PORT', DEFAULT_TEMPORAL_UI_PORT),
    postgresPort: port('LOOPTOOL_PG_PORT', DEFAULT_EMBEDDED_POSTGRES_PORT),
    externalTemporalAddress: env.TEMPORAL_ADDRESS?.trim() || undefined,
    externalDatabaseUrl: env.DATABASE_URL?.trim() || undefined,
  };
}

export interface LocalServices {
  temporal: { address: string; uiUrl?: string; origin: 'started' | 'reused' | 'external' };
  database: { url: string; origin: 'started' | 'reused' | 'external' };
}

const temporalStateDir = (settings: LocalServicesSettings) => path.join(settings.dataDir, 'temporal');
const postgresStateDir = (settings: LocalServicesSettings) => path.join(settings.dataDir, 'postgres');

/**
 * Brings up the embedded default: a Temporal dev server (CLI found or installed by the project) and a PostgreSQL
 * cluster, both detached and keeping their state under the data dir. Idempotent: running services are reused, and a
 * service named by `TEMPORAL_ADDRESS` / `DATABASE_URL` is checked, never started.
 */
export async function servicesUp(settings: LocalServicesSettings, log: (line: string) => void = () => {}): Promise<LocalServices> {
  const temporal = await (async (): Promise<LocalServices['temporal']> => {
    if (settings.externalTemporalAddress) {
      if (!(await isTemporalHealthy(settings.externalTemporalAddress, 5_000))) {
        throw new Error(`TEMPORAL_ADDRESS=${settings.externalTemporalAddress} does not answer`);
      }
      return { address: settings.externalTemporalAddress, origin: 'external' };
    }
    const cli = await resolveTemporalCli({ log });
    const server = await startTemporalDevServer({
      cliPath: cli.path,
      stateDir: temporalStateDir(settings),
      port: settings.temporalPort,
      uiPort: settings.temporalUiPort,
    });
    return { address: server.address, uiUrl: server.uiUrl, origin: server.started ? 'started' : 'reused' };
  })();
  const database = await (async (): Promise<LocalServices['database']> => {
    if (settings.externalDatabaseUrl) return { url: settings.externalDatabaseUrl, origin: 'external' };
    const server = await startEmbeddedPostgres({ stateDir: postgresStateDir(settings), port: settings.postgresPort });
    return { url: server.url, origin: server.started ? 'started' : 'reused' };
  })();
  return { temporal, database };
}

/** Stops the services this project started under the data dir; their state stays for the next `up`. */
export async function servicesDown(settings: LocalServicesSettings): Promise<{ temporal: boolean; postgres: boolean }> {
  const [temporal, postgres] = await Promise.all([
    stopTemporalDevServer(temporalStateDir(settings)),
    stopEmbeddedPostgres(postgresStateDir(settings)),
  ]);
  return { temporal, postgres };
}

export interface ServicesStatus {
  temporal: { running: boolean; pid?: number; address: string; uiUrl: string };
  postgres: { running: boolean; url: string };
}

export async function servicesStatus(settings: LocalServicesSettings): Promise<ServicesStatus> {
  const pid = temporalDevServerPid(temporalStateDir(settings));
  const address = `127.0.0.1:${settings.temporalPort}`;
  return {
    temporal: {
      running: pid !== undefined && (await isTemporalHealthy(address)),
      ...(pid !== undefined ? { pid } : {}),
      address,
      uiUrl: `http://127.0.0.1:${settings.temporalUiPort}`,
    },
    postgres: {
      running: await isEmbeddedPostgresRunning(postgresStateDir(settings)),
      url: `postgres://postgres@127.0.0.1:${settings.postgresPort}/looptool`,
    },
  };
}
