/**
 * The chaos driver's own servers: a Temporal dev server and an embedded PostgreSQL in a throwaway folder, on ports
 * picked free, that the driver may crash, stop and start again as it likes without disturbing any other server on
 * the machine (the demo's, the test suite's). The Temporal server keeps its state in its SQLite file and PostgreSQL in
 * its data dir, so both come back with everything they had. Plus the TCP proxy the trainer API is reached through, so
 * it can be taken away (connection refused) while the sim server behind it keeps running its jobs.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  isEmbeddedPostgresRunning,
  startEmbeddedPostgres,
  stopEmbeddedPostgres,
} from '../../services/embedded-postgres.js';
import { isAlive } from '../../services/process.js';
import {
  startTemporalDevServer,
  stopTemporalDevServer,
  temporalDevServerPid,
} from '../../services/temporal-dev-server.js';
import { freePort, freeTemporalPorts } from '../helpers/ports.js';

export class ThrowawayServices {
  private constructor(
    private readonly cliPath: string,
    private readonly dir: string,
    private readonly temporalPorts: { port: number; uiPort: number },
    private readonly postgresPort: number,
    readonly temporalAddress: string,
    readonly temporalUiUrl: string,
    readonly databaseUrl: string,
  ) {}

  /** Starts both servers under `dir` (which must exist and be world-traversable: PostgreSQL runs as `postgres`). */
  static async start(cliPath: string, dir: string): Promise<ThrowawayServices> {
    const temporalPorts = await freeTemporalPorts();
    const postgresPort = await freePort();
    const temporal = await startTemporalDevServer({ cliPath, stateDir: path.join(dir, 'temporal'), ...temporalPorts });
    const postgres = await startEmbeddedPostgres({
      stateDir: path.join(dir, 'postgres'),
      port: postgresPort,
      database: 'looptool_chaos',
      unsafeNoFsync: true,
    }).catch(async (err: unknown) => {
      await stopTemporalDevServer(path.join(dir, 'temporal'));
      throw err;
    });
    return new ThrowawayServices(
      cliPath,
      dir,
      temporalPorts,
      postgresPort,
      temporal.address,
      temporal.uiUrl,
      postgres.url,
    );
  }

  private get temporalDir(): string {
    return path.join(this.dir, 'temporal');
  }

  private get postgresDir(): string {
    return path.join(this.dir, 'postgres');
  }

  /** Kills the Temporal server as a crash does (SIGKILL: nothing flushed) and waits until it is gone. */
  async crashTemporal(): Promise<void> {
    const pid = temporalDevServerPid(this.temporalDir);
    if (!pid) throw new Error('the chaos Temporal server is not running');
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(50);
  }

  /** Starts the Temporal server again on the same ports and state file; resolves once it answers. */
  async startTemporal(): Promise<void> {
    await startTemporalDevServer({ cliPath: this.cliPath, stateDir: this.temporalDir, ...this.temporalPorts });
  }

  /** Stops PostgreSQL (fast shutdown: sessions are closed, committed data kept). */
  async stopPostgres(): Promise<void> {
    await stopEmbeddedPostgres(this.postgresDir);
  }

  async startPostgres(): Promise<void> {
    await startEmbeddedPostgres({
      stateDir: this.postgresDir,
      port: this.postgresPort,
      database: 'looptool_chaos',
      unsafeNoFsync: true,
    });
  }

  async isPostgresRunning(): Promise<boolean> {
    return isEmbeddedPostgresRunning(this.postgresDir);
  }

  /** Stops both servers (their folders are the caller's to delete). */
  async close(): Promise<void> {
    await stopTemporalDevServer(this.temporalDir).catch(() => {});
    await stopEmbeddedPostgres(this.postgresDir).catch(() => {});
  }
}

/**
 * A TCP proxy on 127.0.0.1 in front of one port. `close()` takes it away as a crashed or unreachable API is away:
 * connections are reset and new ones refused; `open()` brings it back on the same port.
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private listenPort = 0;

  constructor(private readonly targetPort: number) {}

  get port(): number {
    return this.listenPort;
  }

  get url(): string {
    return `http://127.0.0.1:${this.listenPort}`;
  }

  get isOpen(): boolean {
    return this.server !== undefined;
  }

  async open(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, '127.0.0.1');
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (typeof address === 'object' && address) this.listenPort = address.port;
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    await closed;
  }
}
