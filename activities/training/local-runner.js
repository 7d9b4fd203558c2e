#!/usr/bin/env node
// Runs one local training job to its end and records how it ended. It is started detached by the local backend, so the
// job survives worker restarts, and it writes exit.json itself, because the worker that started it may be long gone
// (a new worker can read a file, but not the exit code of a process it did not start).
import { spawn } from 'node:child_process';
import { existsSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const jobDir = process.argv[2];
const run = JSON.parse(readFileSync(path.join(jobDir, 'run.json'), 'utf8'));
const log = openSync(path.join(jobDir, 'log.txt'), 'a');
const writeExit = (result) => {
  const file = path.join(jobDir, 'exit.json');
  // A cancel writes exit.json before it signals us; that record is the truth, not the signal's exit.
  if (existsSync(file)) return;
  writeFileSync(`${file}.tmp`, JSON.stringify({ ...result, finishedAt: new Date().toISOString() }));
  renameSync(`${file}.tmp`, file);
};
const child = spawn(run.argv[0], run.argv.slice(1), { stdio: ['ignore', log, log], cwd: run.cwd });
const forward = (signal) => () => child.kill(signal);
process.on('SIGTERM', forward('SIGTERM'));
process.on('SIGINT', forward('SIGINT'));
child.on('error', (err) => writeExit({ code: null, error: err.message }));
child.on('exit', (code, signal) => writeExit({ code, signal }));
