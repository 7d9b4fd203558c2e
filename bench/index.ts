import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * `npm run bench [-- <section>…]`: runs every benchmark section (each `bench/<name>.ts` exporting `run()`), or the
 * named ones, one after another in this single process. A new section is a new file; nothing here changes.
 */
interface Section {
  run(): Promise<void> | void;
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
  await section.run();
}
