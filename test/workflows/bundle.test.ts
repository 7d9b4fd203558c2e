import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, test } from 'vitest';
import { WORKFLOWS_PATH } from '../../worker/worker.js';

const quiet = new DefaultLogger('ERROR');

describe('workflow sandbox boundary', () => {
  test('the workflows/ bundle builds and exports the workflow functions', async () => {
    const bundle = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quiet });
    expect(bundle.code.length).toBeGreaterThan(1000);
    expect(bundle.code).toContain('loopWorkflow');
    expect(bundle.code).toContain('stageWorkflow');
  });

  test('core/ (checker, formats, schemas, JSON, validation) bundles into the sandbox', async () => {
    const usesCore = fileURLToPath(new URL('../fixtures/core-workflow/index.ts', import.meta.url));
    const bundle = await bundleWorkflowCode({ workflowsPath: usesCore, logger: quiet });
    expect(bundle.code).toContain('coreUsingWorkflow');
  });

  test('a workflow that imports pg fails to bundle, so CI catches it before a worker starts', async () => {
    const forbidden = fileURLToPath(new URL('../fixtures/forbidden-workflow/index.ts', import.meta.url));
    await expect(bundleWorkflowCode({ workflowsPath: forbidden, logger: quiet })).rejects.toThrow(
      /importing the following disallowed modules[\s\S]*'net'/,
    );
  });

  // Type-aware rules need files in the TS project; the import rule does not, so lint these snippets without it.
  const lint = async (filePath: string, code: string) => {
    const eslint = new ESLint({ overrideConfig: [tseslint.configs.disableTypeChecked] });
    const [result] = await eslint.lintText(code, { filePath });
    return (result?.messages ?? [])
      .filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports')
      .map((m) => m.message);
  };

  test('ESLint forbids Node builtins, pg and openai in workflows/ and core/', async () => {
    expect(
      await lint('workflows/example.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n"),
    ).toHaveLength(1);
    expect(await lint('workflows/example.ts', "import fs from 'fs';\nexport const x = fs;\n")).toHaveLength(1);
    expect(await lint('core/example.ts', "import pg from 'pg';\nexport const x = pg;\n")).toEqual([
      expect.stringMatching(/db\//),
    ]);
    expect(await lint('core/example.ts', "import OpenAI from 'openai';\nexport const x = OpenAI;\n")).toEqual([
      expect.stringMatching(/activities\/llm/),
    ]);
    expect(
      await lint(
        'workflows/example.ts',
        "import { createActivities } from '../activities/index.js';\nexport const x = createActivities;\n",
      ),
    ).toHaveLength(1);
  });

  test('ESLint allows type-only imports from activities/ in workflows/, and Node builtins elsewhere', async () => {
    expect(
      await lint(
        'workflows/example.ts',
        "import type { Activities } from '../activities/index.js';\nexport type X = Activities;\n",
      ),
    ).toEqual([]);
    expect(
      await lint('activities/example.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n"),
    ).toEqual([]);
  });
});
