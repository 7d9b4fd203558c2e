import type { Command } from 'commander';
import { openDatabase } from '../../db/open.js';
import { servicesDown, servicesStatus, servicesUp } from '../../services/local-services.js';
import { cliSettings } from '../settings.js';

/** `looptool services up|down|status`: the embedded Temporal dev server and PostgreSQL of the local default. */
export function register(program: Command): void {
  const services = program
    .command('services')
    .description('Start, stop or inspect the embedded Temporal server and PostgreSQL');

  services
    .command('up')
    .description(
      'Start both (installing the Temporal CLI if needed), apply migrations, print their addresses; harmless when already up',
    )
    .action(async () => {
      const settings = cliSettings();
      const up = await servicesUp(settings, (line) => console.log(line));
      const applied: string[] = [];
      const pool = await openDatabase({
        url: up.database.url,
        applicationName: 'looptool-cli',
        max: 1,
        log: (line) => applied.push(line.replace(/^applied /, '')),
      });
      await pool.end();
      if (applied.length > 0) console.log(`Applied migrations: ${applied.join(', ')}`);
      console.log(`Temporal address:  ${up.temporal.address} (${up.temporal.origin})`);
      if (up.temporal.uiUrl) console.log(`Temporal UI:       ${up.temporal.uiUrl}`);
      console.log(`Database URL:      ${up.database.url} (${up.database.origin})`);
      console.log(`State:             ${settings.dataDir}`);
    });

  services
    .command('down')
    .description('Stop the services this project started; their data stays for the next `up`')
    .action(async () => {
      const stopped = await servicesDown(cliSettings());
      console.log(`Temporal dev server: ${stopped.temporal ? 'stopped' : 'was not running'}`);
      console.log(`PostgreSQL:          ${stopped.postgres ? 'stopped' : 'was not running'}`);
    });

  services
    .command('status')
    .description('Say whether each service runs and where')
    .option('--json', 'print as JSON')
    .action(async (options: { json?: boolean }) => {
      const status = await servicesStatus(cliSettings());
      if (options.json) {
        console.log(JSON.stringify(status, null, 2));
        return;
      }
      const t = status.temporal;
      console.log(
        `Temporal dev server: ${t.running ? `running (pid ${t.pid}) at ${t.address}, UI ${t.uiUrl}` : 'stopped'}`,
      );
      console.log(`PostgreSQL:          ${status.postgres.running ? `running at ${status.postgres.url}` : 'stopped'}`);
    });
}
