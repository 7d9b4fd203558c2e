import path from 'node:path';
import { isEmbeddedPostgresRunning, startEmbeddedPostgres, stopEmbeddedPostgres } from './embedded-postgres.js';
import { embeddedPostgresUrl, type SharedSettings } from './settings.js';
import { resolveTemporalCli } from './temporal-cli.js';
import {
  isTemporalHealthy,
  startTemporalDevServer,
  stopTemporalDevServer,
  temporalDevServerPid,
} from './temporal-dev-server.js';

export interface LocalServices {
  temporal: { address: string; uiUrl?: string; origin: 'started' | 'reused' | 'external' };
  database: { url: string; origin: 'started' | 'reused' | 'external' };
}

const temporalStateDir = (settings: SharedSettings) => path.join(settings.dataDir, 'temporal');
const postgresStateDir = (settings: SharedSettings) => path.join(settings.dataDir, 'postgres');

/**
 * Brings up the embedded default: a Temporal dev server (CLI found or installed by the project) and a PostgreSQL
 * cluster, both detached and keeping their state under the data dir. Idempotent: running services are reused, and a
 * service named by `TEMPORAL_ADDRESS` / `DATABASE_URL` is checked, never started.
 */
export async function servicesUp(
  settings: SharedSettings,
  log: (line: string) => void = () => {},
): Promise<LocalServices> {
  const temporal = await (async (): Promise<LocalServices['temporal']> => {
    if (settings.temporal.external) {
      if (!(await isTemporalHealthy(settings.temporal.address, 5_000))) {
        throw new Error(`TEMPORAL_ADDRESS=${settings.temporal.address} does not answer`);
      }
      return { address: settings.temporal.address, origin: 'external' };
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
  return { temporal, database: await startDatabase(settings) };
}

/**
 * The app database of the settings: the one `DATABASE_URL` names, or the embedded PostgreSQL (started when it is not
 * running, so a data command works on a fresh laptop with no other step).
 */
export async function startDatabase(settings: SharedSettings): Promise<LocalServices['database']> {
  if (settings.database.external) return { url: settings.database.url, origin: 'external' };
  const server = await startEmbeddedPostgres({ stateDir: postgresStateDir(settings), port: settings.postgresPort });
  return { url: server.url, origin: server.started ? 'started' : 'reused' };
}

/** Stops the services this project started under the data dir; their state stays for the next `up`. */
export async function servicesDown(settings: SharedSettings): Promise<{ temporal: boolean; postgres: boolean }> {
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

export async function servicesStatus(settings: SharedSettings): Promise<ServicesStatus> {
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
      url: embeddedPostgresUrl(settings.postgresPort),
    },
  };
}
