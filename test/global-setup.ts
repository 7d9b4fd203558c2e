import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { resolveTemporalCli } from '../services/temporal-cli.js';
import { isTemporalHealthy, startTemporalDevServer, stopTemporalDevServer } from '../services/temporal-dev-server.js';
import { startEmbeddedPostgres, stopEmbeddedPostgres } from '../services/embedded-postgres.js';
import { WORKFLOWS_PATH } from '../worker/worker.js';
import { freePort, freeTemporalPorts } from './helpers/ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    /** The Temporal web UI of that server (TEMPORAL_UI_URL when the server is external). */
    temporalUiUrl: string;
    temporalCliPath: string;
    /** A URL on a server where tests may CREATE DATABASE; each test file makes its own database. */
    adminDatabaseUrl: string;
    workflowBundlePath: string;
  }
}

/** The part of scripts/build.js (plain JavaScript: it runs before anything is compiled) used here. */
interface BuildModule {
  ensureBuilt(options?: { quiet?: boolean }): Promise<boolean>;
}

/**
 * Starts one real Temporal dev server and one real PostgreSQL for the whole run, in a throwaway folder, unless
 * TEMPORAL_ADDRESS / DATABASE_URL name existing ones. Builds the workflow bundle once so test files don't each pay
 * for webpack. Everything started here is stopped and deleted at teardown.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The CLI the e2e tests spawn (bin/looptool.js) runs from dist/: built once here rather than raced for by each one.
  const { ensureBuilt } = (await import(new URL('../scripts/build.js', import.meta.url).href)) as BuildModule;
  await ensureBuilt();
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-test-'));
  // As root, PostgreSQL runs as the postgres user, which must be able to reach its data dir inside this folder.
  chmodSync(scratch, 0o755);
  const teardowns: (() => Promise<unknown>)[] = [async () => rmSync(scratch, { recursive: true, force: true })];
  const teardown = async () => {
    for (const step of teardowns.reverse()) await step().catch((err) => console.error('[global-setup] teardown:', err));
  };
  try {
    const cli = await resolveTemporalCli({ log: (line) => console.log(`[global-setup] ${line}`) });
    project.provide('temporalCliPath', cli.path);

    const external = process.env.TEMPORAL_ADDRESS?.trim();
    if (external) {
      if (!(await isTemporalHealthy(external, 5_000))) throw new Error(`TEMPORAL_ADDRESS=${external} does not answer`);
      project.provide('temporalAddress', external);
      project.provide('temporalUiUrl', process.env.TEMPORAL_UI_URL?.trim() || 'http://127.0.0.1:8233');
    } else {
      const stateDir = path.join(scratch, 'temporal');
      const server = await startTemporalDevServer({ cliPath: cli.path, stateDir, ...(await freeTemporalPorts()) });
      teardowns.push(() => stopTemporalDevServer(stateDir));
      project.provide('temporalAddress', server.address);
      project.provide('temporalUiUrl', server.uiUrl);
    }

    const databaseUrl = process.env.DATABASE_URL?.trim();
    if (databaseUrl) {
      project.provide('adminDatabaseUrl', databaseUrl);
    } else {
      const stateDir = path.join(scratch, 'postgres');
      const server = await startEmbeddedPostgres({
        stateDir,
        port: await freePort(),
        database: 'postgres',
        unsafeNoFsync: true,
      });
      teardowns.push(() => stopEmbeddedPostgres(stateDir));
      project.provide('adminDatabaseUrl', server.url);
    }

    const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: new DefaultLogger('WARN') });
    const bundlePath = path.join(scratch, 'workflow-bundle.js');
    writeFileSync(bundlePath, bundle.code);
    project.provide('workflowBundlePath', bundlePath);
  } catch (err) {
    await teardown();
    throw err;
  }
  return teardown;
}
