import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { findChromium, HEADLESS_FLAGS } from '../../client/chromium.js';
import { createLoopFixture, type LoopFixture, waitFor } from '../helpers/loop-fixture.js';

const ARTIFACTS = path.resolve('test-artifacts');

describe('the Temporal web UI shows a loop', () => {
  let f: LoopFixture;
  let browser: Browser;
  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    f = await createLoopFixture({ samples: 120 });
    const executablePath = findChromium();
    if (!executablePath)
      throw new Error(
        'no Chromium: `npm test` installs it with apt-get as root; otherwise install it or set CHROMIUM_PATH',
      );
    browser = await chromium.launch({ executablePath, args: HEADLESS_FLAGS.filter((flag) => flag !== '--headless') });
  });
  afterAll(async () => {
    await browser?.close();
    await f?.close();
  });

  test('found by its search attributes, with its current details', async () => {
    await f.start(f.config({ name: 'ui-loop', iterations: 1 }));
    // Paused before any worker runs it: the loop's handlers exist before its first await, so the pause is taken in its
    // first workflow task and the loop holds before training, whatever the machine's speed.
    const paused = f.loops.pause('ui-loop');
    const worker = f.startWorker();
    expect(await paused).toMatchObject({ paused: true, stage: 'setup', iteration: 1 });

    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const query = encodeURIComponent('LoopName="ui-loop" AND LoopPaused=true');
    await page.goto(`${inject('temporalUiUrl')}/namespaces/default/workflows?query=${query}`);
    const row = page.getByText('loop/ui-loop', { exact: true }).first();
    await row.waitFor({ timeout: 60_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'ui-workflows-by-search-attribute.png') });

    await row.click();
    // UI 2.5x shows a workflow's current details (setCurrentDetails) under "User Metadata".
    await page.getByText('User Metadata', { exact: true }).click();
    await page.getByText('Current Details').first().waitFor({ timeout: 30_000 });
    // The UI renders the markdown in a sandboxed frame (bold names, a table, "1/1" as a fraction glyph), so read the
    // visible text of every frame.
    const visibleText = async () =>
      (
        await Promise.all(
          page.frames().map((frame) =>
            frame
              .locator('body')
              .innerText()
              .catch(() => ''),
          ),
        )
      ).join('\n');
    await waitFor(
      'the current details to render',
      async () => /ui-loop: iteration 1.1, stage setup \(paused\)/.test(await visibleText()),
      30_000,
    );
    // The iteration table the CLI prints too, with the base model's row and every role column.
    expect(await visibleText()).toMatch(/0 \(base\)/);
    expect(await visibleText()).toMatch(
      /error_seed[\s\S]*relabeled[\s\S]*expanded[\s\S]*high_ppl[\s\S]*seed_new[\s\S]*injected[\s\S]*accuracy/,
    );
    await page.screenshot({ path: path.join(ARTIFACTS, 'ui-loop-current-details.png'), fullPage: true });

    await f.loops.handle('ui-loop').terminate('UI test done');
    worker.kill('SIGTERM');
  });
});
