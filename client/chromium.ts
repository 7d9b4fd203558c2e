import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const CANDIDATES = [
  '/usr/bin/chromium',
  '/usr/bin/chromium-browser',
  '/usr/bin/google-chrome',
  '/usr/bin/google-chrome-stable',
];

/** A headless-capable Chromium: `CHROMIUM_PATH`, else the usual system paths; undefined when there is none. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const candidate of [env.CHROMIUM_PATH?.trim(), ...CANDIDATES]) {
    if (!candidate) continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/**
 * The flags a sandboxed, offline machine needs: no sandbox (root in containers), and none of Chromium's background
 * network traffic, which a closed network refuses.
 */
export const HEADLESS_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--hide-scrollbars',
];

/** Renders a local file (an SVG chart, an HTML page) to a PNG of the given size with headless Chromium. */
export function screenshotFile(
  chromium: string,
  file: string,
  png: string,
  size: { width: number; height: number },
): void {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'looptool-chromium-'));
  try {
    const result = spawnSync(
      chromium,
      [
        ...HEADLESS_FLAGS,
        `--user-data-dir=${profile}`,
        `--screenshot=${png}`,
        `--window-size=${size.width},${size.height}`,
        pathToFileURL(file).href,
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    if (result.status !== 0)
      throw new Error(
        `chromium could not render ${file}: ${(result.stderr || result.error?.message || '').trim().split('\n').slice(-2).join(' ')}`,
      );
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
