#!/usr/bin/env node
// Entry point of the README's commands (`npm run demo`, `npm test`, `npm run services`). It runs with nothing but
// Node, so on a fresh clone it can install the project's npm dependencies and compile the TypeScript sources to dist/
// (scripts/build.js, when they changed) before handing over to the compiled CLI or to the tests.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBuilt } from './build.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  console.error(`looptool needs Node.js 20.19 or newer; this is ${process.versions.node}.`);
  process.exit(1);
}

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.error) {
    console.error(`${command}: ${result.error.message}`);
    process.exit(1);
  }
  return result.status ?? 1;
}

/** node_modules is current when npm's own record of the install is at least as new as the lockfile. */
function dependenciesCurrent() {
  const installed = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  if (!existsSync(installed)) return false;
  if (statSync(installed).mtimeMs < statSync(lock).mtimeMs) return false;
  // Optional entries include other platforms' binaries, which npm rightly never installs here.
  const wanted = JSON.parse(readFileSync(lock, 'utf8')).packages ?? {};
  return Object.entries(wanted).every(
    ([key, entry]) => key === '' || entry.optional || existsSync(path.join(root, key)),
  );
}

if (!dependenciesCurrent()) {
  console.log('Installing npm dependencies (npm ci)…');
  if (run('npm', ['ci', '--no-audit', '--no-fund']) !== 0) process.exit(1);
}

// The CLI runs from dist/; building here, once, also spares the test processes that spawn it a race to build.
try {
  await ensureBuilt();
} catch (err) {
  console.error(`Could not build dist/: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}

/**
 * The UI test and the report's PNG charts need a headless Chromium. Debian's package is installed when it is missing
 * and we may (root with apt-get); otherwise the tests that need it say so.
 */
function ensureChromium() {
  const present = ['/usr/bin/chromium', '/usr/bin/chromium-browser', process.env.CHROMIUM_PATH].some(
    (p) => p && existsSync(p),
  );
  if (present || process.getuid?.() !== 0 || !existsSync('/usr/bin/apt-get')) return;
  console.log('Installing Chromium for the UI and report tests (apt-get install chromium)…');
  if (run('apt-get', ['update', '-qq']) !== 0 || run('apt-get', ['install', '-y', '-qq', 'chromium']) !== 0) {
    console.error('Could not install chromium; the UI and report tests will fail. Install it, or set CHROMIUM_PATH.');
  }
}

const [task, ...rest] = process.argv.slice(2);
const looptool = path.join(root, 'bin', 'looptool.js');
const vitest = path.join(root, 'node_modules', '.bin', 'vitest');
switch (task) {
  case 'test':
    ensureChromium();
    process.exit(run(vitest, ['run', ...rest]));
    break;
  case 'demo':
  case 'services':
    process.exit(run(process.execPath, [looptool, task, ...rest]));
    break;
  default:
    console.error(`scripts/run.js: unknown task ${task ?? '(none)'}; expected test, demo or services`);
    process.exit(2);
}
