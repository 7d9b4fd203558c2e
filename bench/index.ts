import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * `npm run bench [-- <section>…]`: runs every benchmark section (each `bench/<name>.ts` exporting `run()`), or the
 * named ones, one after another in this single process. A new section is a new file; nothing here changes. A section
 * that exports `namedOnly = true` (the hour-long `scale`) runs only when named. Options (`--name=value`) are left in
 * `process.argv` for the sections to read.
 */
interface Section {
  run(): Promise<void> | void;
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
console.log(`node ${process.version}, ${process.platform}/${process.arch}, single process`);
for (const name of requested.length > 0 ? requested : available) {
  const section = (await import(`./${name}.ts`)) as Section;
  if (section.namedOnly && !requested.includes(name)) {
    console.log(`== ${name}: skipped (runs only when named: npm run bench -- ${name})`);
    continue;
  }
  await section.run();
}
