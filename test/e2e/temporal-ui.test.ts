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
    if (!executablePath) throw new Error('no Chromium: `npm test` installs it with apt-get as root; otherwise install it or set CHROMIUM_PATH');
    browser = await chromium.launch({ executablePath, args: HEADLESS_FLAGS.filter((flag) => flag !== '--headless') });
  });
  afterAll(async () => {
    await browser?.close();
    await f?.close();
  });

  test('found by its search attributes, with its current details', async () => {
    await f.start(f.config({ name: 'ui-loop', iterations: 1 }));
    const worker = f.startWorker();
    await waitFor('the loop to probe', async () => (await f.loops.status('ui-loop')).stage === 'probe' || undefined);
    await f.loops.pause('ui-loop');

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
    const visibleText = async () => (await Promise.all(page.frames().map((frame) => frame.locator('body').innerText().catch(() => '')))).join('\n');
    await waitFor('the current details to render', async () => /ui-loop: iteration 1.1, stage probe \(paused\)/.test(await visibleText()), 30_000);
    expect(await visibleText()).toMatch(/base\s*model/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'ui-loop-current-details.png'), fullPage: true });

    await f.loops.handle('ui-loop').terminate('UI test done');
    worker.kill('SIGTERM');
  });
});
