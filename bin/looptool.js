#!/usr/bin/env node
// The CLI runs as JavaScript compiled from the TypeScript sources into dist/ (scripts/build.js). A clone needs no build
// step: when a source changed since the last build (a stat of each source file, a few milliseconds), dist/ is rebuilt
// first; esbuild is loaded only then. Stack traces point at the .ts files through the build's source maps.
import { ensureBuilt, runBundle } from '../scripts/build.js';

process.setSourceMapsEnabled(true);
try {
  await ensureBuilt({ quiet: true });
} catch (err) {
  console.error(
    `looptool: could not compile the sources to dist/: ${err instanceof Error ? err.message : String(err)}`,
  );
  process.exit(1);
}
// `looptool score` is timed against BFCL's scorer (npm run bench -- score): it runs from one bundled CommonJS file (see
// BUNDLES in scripts/build.js), which loads in a third of the time of the ~150 modules it is made of, with V8's code
// cache (runBundle).
if (process.argv[2] === 'score') runBundle('bundles/score.cjs');
else await import('../dist/client/cli.js');
