import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Workflow code runs in Temporal's deterministic sandbox and core/ is imported by it, so neither may reach I/O.
// The bundle test (test/workflows/bundle.test.ts) catches what slips through transitively; this catches it at the line.
const nodeBuiltins = builtinModules.filter((name) => !name.startsWith('_')).flatMap((name) => [name, `node:${name}`]);
const sandboxRestrictedImports = {
  paths: [
    ...nodeBuiltins.map((name) => ({ name, message: 'Node builtins are not deterministic: do I/O in an activity.' })),
    { name: 'pg', message: 'Database access belongs in db/ and activities/.' },
    { name: 'openai', message: 'Model calls belong in activities/llm/.' },
  ],
  patterns: [
    { group: ['pg/*', 'openai/*'], message: 'Database and model clients belong in activities/.' },
    {
      group: ['**/activities/*', '**/activities/**', '**/db/*', '**/db/**', '**/worker/*', '**/client/*', '**/sim/*'],
      allowTypeImports: true,
      message: 'Workflows and core/ may import only types from side-effecting folders.',
    },
  ],
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
  {
    files: ['workflows/**/*.ts', 'core/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', sandboxRestrictedImports] },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly' },
    },
  },
);
