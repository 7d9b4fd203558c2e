import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The direction of imports between the project's rooms (README "Layout"), enforced here so that new code finds its
 * obvious home: `core/` is the bottom and imports no other room; `db/` and `services/` build on `core/` alone;
 * `datasets/` on `db/`; `activities/` on those (never on the worker that hosts them or the CLI); `workflows/` run in
 * Temporal's deterministic sandbox and take only types from side-effecting rooms; only `client/`, `bench/` and `test/`
 * import `client/`. The bundle test (test/workflows/bundle.test.ts) catches what slips into the sandbox transitively.
 */
const ROOMS = [
  'core',
  'db',
  'services',
  'datasets',
  'activities',
  'workflows',
  'worker',
  'client',
  'sim',
  'bench',
  'test',
];
const roomPatterns = (room) => [`**/${room}/*`, `**/${room}/**`];
const forbidRooms = (rooms, why, allowTypeImports = false) => ({
  group: rooms.flatMap(roomPatterns),
  allowTypeImports,
  message: why,
});

// Workflow code runs in Temporal's deterministic sandbox and core/ is imported by it, so neither may reach I/O.
const nodeBuiltins = builtinModules.filter((name) => !name.startsWith('_')).flatMap((name) => [name, `node:${name}`]);
const sandboxPaths = [
  ...nodeBuiltins.map((name) => ({ name, message: 'Node builtins are not deterministic: do I/O in an activity.' })),
  { name: 'pg', message: 'Database access belongs in db/ and activities/.' },
  { name: 'openai', message: 'Model calls belong in activities/llm/.' },
];
const sandboxPatterns = [{ group: ['pg/*', 'openai/*'], message: 'Database and model clients belong in activities/.' }];

/** What each room may not import (see the comment at the top). */
const restrictions = {
  core: {
    paths: sandboxPaths,
    patterns: [
      ...sandboxPatterns,
      forbidRooms(
        ROOMS.filter((room) => room !== 'core'),
        'core/ is the bottom room: pure code that workflows run in their sandbox; it imports no other room.',
      ),
    ],
  },
  workflows: {
    paths: sandboxPaths,
    patterns: [
      ...sandboxPatterns,
      forbidRooms(
        ['activities', 'db', 'services', 'datasets', 'worker', 'sim'],
        'Workflows may import only types from side-effecting rooms.',
        true,
      ),
      forbidRooms(['client', 'bench', 'test'], 'Workflows never import the CLI, benchmarks or tests.'),
    ],
  },
  db: {
    patterns: [
      forbidRooms(
        ['services', 'datasets', 'activities', 'workflows', 'worker', 'client', 'sim', 'bench', 'test'],
        'db/ builds on core/ alone.',
      ),
    ],
  },
  services: {
    patterns: [
      forbidRooms(
        ['db', 'datasets', 'activities', 'workflows', 'worker', 'client', 'sim', 'bench', 'test'],
        'services/ builds on core/ alone.',
      ),
    ],
  },
  datasets: {
    patterns: [
      forbidRooms(
        ['services', 'activities', 'workflows', 'worker', 'client', 'sim', 'bench', 'test'],
        'datasets/ builds on core/ and db/.',
      ),
    ],
  },
  activities: {
    patterns: [
      forbidRooms(
        ['worker', 'client', 'workflows', 'sim', 'bench', 'test'],
        'Activities never import the worker that hosts them, the CLI, workflows or the simulator.',
      ),
    ],
  },
  worker: {
    patterns: [
      forbidRooms(
        ['client', 'datasets', 'sim', 'bench', 'test'],
        'The worker composes activities; it never imports the CLI.',
      ),
    ],
  },
  sim: {
    patterns: [
      forbidRooms(
        ['db', 'activities', 'workflows', 'worker', 'client', 'bench', 'test'],
        'The simulator stands in for model servers; it shares core/ and datasets/ only.',
      ),
    ],
  },
};

export default tseslint.config(
  { ignores: ['node_modules/**', '.data/**', '.tools/**', 'dist/**', 'test/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // Forgetting to await an activity, a query or a transaction is the classic silent bug here.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  ...Object.entries(restrictions).map(([room, options]) => ({
    files: [`${room}/**/*.ts`],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', options] },
  })),
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly' },
    },
  },
);
