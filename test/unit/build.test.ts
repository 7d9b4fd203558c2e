import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { describe, expect, test } from 'vitest';
import { COMMANDS } from '../../client/program.js';
import { projectPath } from '../../services/paths.js';
import { runLooptool } from '../helpers/cli.js';

/** The part of scripts/build.js (plain JavaScript: it runs before anything is compiled) that these tests use. */
interface BuildModule {
  DIST: string;
  STAMP: string;
  BUNDLES: Record<string, string>;
  ensureBuilt(options?: { quiet?: boolean }): Promise<boolean>;
  buildState(): { stale: boolean; signature: string; files: { rel: string }[] };
}
const buildModule = (await import(new URL('../../scripts/build.js', import.meta.url).href)) as BuildModule;

describe('the dist/ build (scripts/build.js)', () => {
  test('ensureBuilt leaves a complete build with its stamp, and a second call does not rebuild', async () => {
    await buildModule.ensureBuilt({ quiet: true });
    const dist = buildModule.DIST;
    expect(dist).toBe(projectPath('dist'));
    expect(existsSync(path.join(dist, 'client', 'cli.js'))).toBe(true);
    expect(existsSync(path.join(dist, 'client', 'cli.js.map'))).toBe(true);
    expect(existsSync(path.join(dist, 'db', 'migrations', '0001_loops.sql'))).toBe(true);
    expect(existsSync(path.join(dist, 'activities', 'training', 'local-runner.js'))).toBe(true);
    // The bundled commands, each with its map, kept by the stale-file sweep.
    for (const out of Object.keys(buildModule.BUNDLES)) {
      expect(existsSync(path.join(dist, out)), out).toBe(true);
      expect(existsSync(path.join(dist, `${out}.map`)), out).toBe(true);
    }
    // Every prompt template is where activities/llm/prompts.ts looks for it relative to its own module.
    const prompts = readdirSync(projectPath('activities', 'llm', 'prompts')).filter((file) => file.endsWith('.md'));
    expect(prompts.length).toBeGreaterThan(0);
    for (const file of prompts) {
      expect(readFileSync(path.join(dist, 'activities', 'llm', 'prompts', file), 'utf8')).toBe(
        readFileSync(projectPath('activities', 'llm', 'prompts', file), 'utf8'),
      );
    }
    // Each source has its output: .ts compiled to .js, anything else copied under the same name.
    const state = buildModule.buildState();
    for (const { rel } of state.files)
      expect(existsSync(path.join(dist, rel.endsWith('.ts') ? `${rel.slice(0, -3)}.js` : rel)), rel).toBe(true);

    expect(state.stale).toBe(false);
    expect((JSON.parse(readFileSync(buildModule.STAMP, 'utf8')) as { signature: string }).signature).toBe(
      state.signature,
    );
    expect(await buildModule.ensureBuilt({ quiet: true })).toBe(false);
  });

  test('looptool score runs with a V8 code cache beside its bundle, made again when V8 refuses it', async () => {
    await buildModule.ensureBuilt({ quiet: true });
    const cache = path.join(buildModule.DIST, 'bundles', 'score.cjs.v8-cache');
    rmSync(cache, { force: true });
    const first = await runLooptool(['score', '--help']);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain('--predictions');
    const written = readFileSync(cache);
    // 4 bytes: the CPU milliseconds of the run that wrote it; then V8's data.
    expect(written.length).toBeGreaterThan(1000);
    // A cache V8 cannot use (another Node, a damaged file) does not stop the command and is replaced.
    writeFileSync(cache, Buffer.concat([written.subarray(0, 4), Buffer.alloc(5000, 7)]));
    const second = await runLooptool(['score', '--help']);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(first.stdout);
    expect(readFileSync(cache).subarray(4, 5004).equals(Buffer.alloc(5000, 7))).toBe(false);
  });

  test('looptool --help runs from the build and lists every command', async () => {
    await buildModule.ensureBuilt({ quiet: true });
    const result = await runLooptool(['--help'], { timeoutMs: 30_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    for (const entry of COMMANDS) expect(result.stdout).toMatch(new RegExp(`^  ${entry.name}\\b`, 'm'));
  });
});

describe('the lazy command table (client/program.ts)', () => {
  test.each(COMMANDS.map((entry) => [entry.name, entry] as const))(
    '%s: its module registers a command of that name',
    async (name, entry) => {
      const program = new Command('looptool');
      (await entry.load()).register(program, name);
      expect(program.commands.map((command) => command.name())).toContain(name);
      // The table's description is what --help shows without loading the module; it must say the same.
      expect(program.commands.find((command) => command.name() === name)?.description()).toBe(entry.description);
    },
  );
});
