import { ESLint } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, test } from 'vitest';

/** The import rule's messages for a snippet at `filePath` (type-aware rules are off: the snippets are not in the project). */
async function violations(filePath: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ overrideConfig: [tseslint.configs.disableTypeChecked] });
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === '@typescript-eslint/no-restricted-imports')
    .map((m) => m.message);
}

const importing = (specifier: string, type = false) =>
  `import ${type ? 'type ' : ''}{ x } from '${specifier}';\nexport const y: unknown = ${type ? 'null' : 'x'};\n`;

describe('ESLint enforces the direction of imports between rooms (README "Layout")', () => {
  test.each([
    ['activities/probe.ts', '../worker/worker.js', /never import the worker/],
    ['activities/probe.ts', '../client/settings.js', /never import the worker that hosts them, the CLI/],
    ['activities/llm/calls.ts', '../../sim/server.js', /simulator/],
    ['db/queries/loops.ts', '../../activities/deps.js', /db\/ builds on core\/ alone/],
    ['services/settings.ts', '../db/open.js', /services\/ builds on core\/ alone/],
    ['datasets/import.ts', '../client/format.js', /datasets\/ builds on core\/ and db\//],
    ['worker/worker.ts', '../client/settings.js', /never imports the CLI/],
    ['sim/server.ts', '../client/format.js', /simulator/],
    ['core/inputs.ts', '../db/queries/loops.js', /core\/ is the bottom room/],
  ])('%s may not import %s', async (file, specifier, why) => {
    expect(await violations(file, importing(specifier))).toEqual([expect.stringMatching(why)]);
  });

  test('core/ may not import even types from another room; workflows/ may import types from side-effecting rooms only', async () => {
    expect(await violations('core/example.ts', importing('../activities/index.js', true))).toHaveLength(1);
    expect(await violations('workflows/example.ts', importing('../activities/index.js', true))).toEqual([]);
    expect(await violations('workflows/example.ts', importing('../activities/index.js'))).toHaveLength(1);
    expect(await violations('workflows/example.ts', importing('../client/loop-client.js', true))).toHaveLength(1);
  });

  test('the allowed directions pass: client/, bench/ and test/ import client/; activities/ import db/, datasets/ and services/', async () => {
    expect(await violations('client/commands/loop.ts', importing('../settings.js'))).toEqual([]);
    expect(await violations('bench/cli.ts', importing('../client/format.js'))).toEqual([]);
    expect(await violations('test/unit/example.test.ts', importing('../../client/report.js'))).toEqual([]);
    expect(await violations('activities/evaluate.ts', importing('../datasets/read-records.js'))).toEqual([]);
    expect(await violations('activities/evaluate.ts', importing('../services/paths.js'))).toEqual([]);
    expect(await violations('datasets/import.ts', importing('../db/queries/samples.js'))).toEqual([]);
  });
});
