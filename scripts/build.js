#!/usr/bin/env node
// Compiles the TypeScript sources to dist/ (one ES module per source file, with a linked source map) and copies the
// other files in the source folders (prompt templates, SQL migrations, the local trainer's runner, READMEs) beside
// them, so modules that find assets relative to `import.meta.url` work the same from dist/.
//
// `ensureBuilt()` is on the path of every `looptool` command, so the staleness check imports nothing but Node's own
// modules and costs a few milliseconds: the relative path, mtime and size of every file in the source folders (plus
// this script and tsconfig.json), compared with what dist/.build-stamp.json recorded. esbuild is loaded only to build.
//
// `node scripts/build.js` (npm run build) always builds and prints one line.
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const SCRIPT = fileURLToPath(import.meta.url);
export const ROOT = path.resolve(path.dirname(SCRIPT), '..');
export const DIST = path.join(ROOT, 'dist');
export const STAMP = path.join(DIST, '.build-stamp.json');
/** The folders whose code runs from dist/ (bench/, test/ and scripts/ stay sources). */
export const SOURCE_DIRS = ['core', 'db', 'workflows', 'activities', 'worker', 'client', 'services', 'datasets', 'sim'];
/**
 * Commands whose start-up is on a measured path get one bundled file besides the per-file build: `looptool score`
 * loads ~150 modules otherwise (zod and commander among them), a tenth of a second per run before any work; one file
 * loads in a third of that. bin/looptool.js runs the bundle for the command; the worker thread the command starts is
 * bundled too (it is found beside the bundle, as `./score-worker.js`, the way the per-file build has it beside
 * datasets/score-predictions.js). Output path → entry source; a `.cjs` output is a CommonJS bundle: bin/looptool.js
 * `require`s the command's (about 20 ms less CPU per run than importing the same code as an ES module, which goes
 * through the asynchronous module loader), while the worker thread's stays an ES module.
 */
export const BUNDLES = {
  'bundles/score.cjs': 'client/score-entry.ts',
  'bundles/score-worker.js': 'datasets/score-worker.ts',
};
/** Files outside the source folders whose change changes the output: this script's options, the compiler settings. */
const INPUTS = ['scripts/build.js', 'tsconfig.json'];
/** Temporary outputs are `<name>.<pid>-<n>.tmp-build`: a concurrent build's must not be taken for stale outputs. */
const TEMP_SUFFIX = '.tmp-build';
/** A temporary file older than this was left by a build that died, and is removed. */
const ABANDONED_TEMP_MS = 10 * 60_000;

/** Every file in the source folders, relative to the root with `/` separators, with its mtime and size; sorted. */
function listSources() {
  const files = [];
  const walk = (rel) => {
    let entries;
    try {
      entries = readdirSync(path.join(ROOT, rel), { withFileTypes: true });
    } catch (err) {
      if (err.code === 'ENOENT') return;
      throw err;
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const child = `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(child);
      else if (entry.isFile()) {
        const stat = statSync(path.join(ROOT, child));
        files.push({ rel: child, mtimeMs: stat.mtimeMs, size: stat.size });
      }
    }
  };
  for (const dir of SOURCE_DIRS) walk(dir);
  return files.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
}

/** The signature of the sources: one `path mtime size` line per file, the build's own inputs first. */
function signatureOf(files) {
  const inputs = INPUTS.map((rel) => {
    const stat = statSync(path.join(ROOT, rel));
    return `${rel} ${stat.mtimeMs} ${stat.size}`;
  });
  return [...inputs, ...files.map((f) => `${f.rel} ${f.mtimeMs} ${f.size}`)].join('\n');
}

function readStamp() {
  try {
    return JSON.parse(readFileSync(STAMP, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Whether dist/ is out of date with the sources (the cheap check: a directory walk and a stat per file, no reads of
 * their contents), and the listing it was decided on, for {@link build}.
 */
export function buildState() {
  const files = listSources();
  const signature = signatureOf(files);
  return { stale: readStamp()?.signature !== signature, files, signature };
}

/** Where a source file's output goes: `x/y.ts` → `dist/x/y.js`, any other file to the same path under dist/. */
function outputOf(rel) {
  return rel.endsWith('.ts') && !rel.endsWith('.d.ts') ? `${rel.slice(0, -3)}.js` : rel;
}

let tempCounter = 0;

/** Writes `contents` to `file` through a temporary file in the same folder and a rename: readers see old or new. */
function writeAtomic(file, contents) {
  mkdirSync(path.dirname(file), { recursive: true });
  const temp = `${file}.${process.pid}-${tempCounter++}${TEMP_SUFFIX}`;
  try {
    writeFileSync(temp, contents);
    renameSync(temp, file);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/**
 * Runs a CommonJS bundle of {@link BUNDLES} (`bundles/score.cjs`) with V8's code cache: the bytecode of the functions a
 * run compiled is kept beside the bundle (`<bundle>.v8-cache`) and handed to the next run, which then neither parses
 * the 1 MB bundle nor compiles those functions again (20–30 ms of a 0.4–1 s scoring run). The cache is written as the
 * process exits when there was none, when V8 refused it (a rebuild, another Node), or when this run used more than
 * twice the CPU time of the run that wrote it: a cache from `looptool score --help` holds little of what scoring
 * compiles, and the first real run replaces it. A rebuild removes the cache with the other stale files. Where dist/ is
 * not writable the command runs without it.
 */
export function runBundle(out) {
  const file = path.join(DIST, out);
  const cacheFile = `${file}.v8-cache`;
  // The file: the CPU milliseconds of the run that wrote it (4 bytes), then V8's data.
  let cached;
  try {
    cached = readFileSync(cacheFile);
  } catch {
    cached = undefined;
  }
  const writerCpuMs = cached && cached.length > 4 ? cached.readUInt32LE(0) : 0;
  const cachedData = cached && cached.length > 4 ? cached.subarray(4) : undefined;
  // Node's own CommonJS wrapper, on the bundle's first line so that line numbers stay the bundle's.
  const wrapped = `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`;
  const script = new vm.Script(wrapped, { filename: file, cachedData });
  process.once('exit', () => {
    const usage = process.cpuUsage();
    const cpuMs = Math.round((usage.user + usage.system) / 1000);
    if (cachedData !== undefined && !script.cachedDataRejected && cpuMs <= 2 * writerCpuMs) return;
    try {
      const header = Buffer.alloc(4);
      header.writeUInt32LE(Math.min(cpuMs, 0xffffffff));
      writeAtomic(cacheFile, Buffer.concat([header, script.createCachedData()]));
    } catch {
      // Not writable (an installed copy): the next run compiles again.
    }
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));
}

/** Every file under dist/, relative to it with `/` separators. */
function listDist() {
  const files = [];
  const walk = (rel) => {
    let entries;
    try {
      entries = readdirSync(rel ? path.join(DIST, rel) : DIST, { withFileTypes: true });
    } catch (err) {
      if (err.code === 'ENOENT') return;
      throw err;
    }
    for (const entry of entries) {
      const child = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(child);
      else files.push(child);
    }
  };
  walk('');
  return files;
}

/**
 * Builds dist/ from the sources: every `.ts` file transpiled on its own (no bundling: imports stay `.js` specifiers
 * between the per-file outputs) to an ES module for Node 20 with a linked source map pointing at the `.ts`, every
 * other file copied. Each output is written to a temporary name and renamed into place, outputs whose source is gone
 * are deleted, and the stamp is written last, so a concurrent build or a reader never sees a half-written file.
 * Returns what it did.
 */
export async function build(options = {}) {
  const started = performance.now();
  const { files, signature } = options.state ?? buildState();
  const { build: esbuild } = await import('esbuild');

  const wanted = new Map();
  for (const file of files) {
    const out = outputOf(file.rel);
    if (wanted.has(out))
      throw new Error(`scripts/build.js: ${file.rel} and ${wanted.get(out)} both compile to dist/${out}`);
    wanted.set(out, file.rel);
  }
  for (const [out, entry] of Object.entries(BUNDLES)) wanted.set(out, entry);
  for (const out of [...wanted.keys()])
    if (/\.c?js$/.test(out) && wanted.get(out).endsWith('.ts')) wanted.set(`${out}.map`, wanted.get(out));

  const entryPoints = files.filter((f) => outputOf(f.rel) !== f.rel).map((f) => path.join(ROOT, f.rel));
  const result = await esbuild({
    absWorkingDir: ROOT,
    entryPoints,
    outdir: DIST,
    outbase: ROOT,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    // The map's `sources` point at the .ts files next to which it was built; their text need not be copied in.
    sourcesContent: false,
    tsconfig: path.join(ROOT, 'tsconfig.json'),
    write: false,
    logLevel: 'silent',
  });
  for (const output of result.outputFiles) writeAtomic(output.path, output.contents);
  const bundled = [];
  for (const [out, entry] of Object.entries(BUNDLES)) {
    const commonJs = out.endsWith('.cjs');
    const result = await esbuild({
      absWorkingDir: ROOT,
      entryPoints: [path.join(ROOT, entry)],
      outfile: path.join(DIST, out),
      bundle: true,
      format: commonJs ? 'cjs' : 'esm',
      platform: 'node',
      target: 'node20',
      // An ES module bundle: CommonJS packages in it (commander) call require() for Node's own modules, so it gets
      // one. A CommonJS bundle: `import.meta.url` (the module's own URL, for files found beside it) is its file's.
      banner: {
        js: commonJs
          ? "const __importMetaUrl = require('node:url').pathToFileURL(__filename).href;"
          : "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
      },
      define: commonJs ? { 'import.meta.url': '__importMetaUrl' } : {},
      sourcemap: 'linked',
      sourcesContent: false,
      tsconfig: path.join(ROOT, 'tsconfig.json'),
      write: false,
      logLevel: 'silent',
    });
    bundled.push(...result.outputFiles);
  }
  for (const output of bundled) writeAtomic(output.path, output.contents);
  const copies = files.filter((f) => outputOf(f.rel) === f.rel);
  for (const file of copies) writeAtomic(path.join(DIST, file.rel), readFileSync(path.join(ROOT, file.rel)));

  let removed = 0;
  for (const rel of listDist()) {
    if (rel === '.build-stamp.json' || wanted.has(rel)) continue;
    const full = path.join(DIST, rel);
    if (rel.endsWith(TEMP_SUFFIX)) {
      // Another build's file in flight, unless it is old enough to have been abandoned.
      const age = Date.now() - (statSync(full, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age < ABANDONED_TEMP_MS) continue;
    }
    try {
      unlinkSync(full);
      removed++;
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
  }
  removeEmptyDirs(DIST);

  writeAtomic(STAMP, `${JSON.stringify({ builtAt: new Date().toISOString(), signature }, null, 1)}\n`);
  const summary = {
    compiled: entryPoints.length,
    bundled: Object.keys(BUNDLES).length,
    copied: copies.length,
    removed,
    ms: Math.round(performance.now() - started),
  };
  if (!options.quiet) {
    console.log(
      `Built dist/: ${summary.compiled} modules compiled, ${summary.bundled} bundles, ${summary.copied} files copied` +
        `${removed > 0 ? `, ${removed} stale files removed` : ''} in ${summary.ms} ms`,
    );
  }
  return summary;
}

function removeEmptyDirs(dir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const entry of entries) if (entry.isDirectory()) removeEmptyDirs(path.join(dir, entry.name));
  if (dir !== DIST && readdirSync(dir).length === 0) {
    try {
      rmdirSync(dir);
    } catch {
      // A concurrent build may have just written into it.
    }
  }
}

/**
 * Builds dist/ when it is stale (see {@link buildState}); otherwise returns at the cost of the check. Resolves to true
 * when it built. Quiet: no line printed about the build.
 */
export async function ensureBuilt(options = {}) {
  const state = buildState();
  if (!state.stale) return false;
  await build({ quiet: options.quiet ?? false, state });
  return true;
}

if (process.argv[1] && path.resolve(process.argv[1]) === SCRIPT) {
  try {
    await build();
  } catch (err) {
    console.error(`scripts/build.js: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
