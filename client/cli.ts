import { buildProgram } from './program.js';

/** An error and its causes on one line: Temporal wraps the reason (e.g. an update validator's message) in `cause`. */
function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let current: unknown = err; current && parts.length < 5; current = (current as { cause?: unknown }).cause) {
    const message = current instanceof Error ? current.message : String(current);
    if (message && !parts.includes(message)) parts.push(message);
  }
  return parts.join(': ');
}

try {
  await (await buildProgram(process.argv)).parseAsync(process.argv);
} catch (err) {
  console.error(describeError(err));
  process.exitCode = 1;
}
