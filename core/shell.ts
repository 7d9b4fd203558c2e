/**
 * POSIX shell quoting, for the few places an argv must become one command line: a Slurm batch script, a Ray Jobs
 * entrypoint, a KubeRay RayJob entrypoint. Everywhere else commands stay argv and no shell sees them.
 */

/** One argument as one shell word, always single-quoted (each `'` closed, escaped and reopened): nothing expands. */
export function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * One argument as one shell word, left bare when it holds nothing the shell treats specially (readable command lines),
 * else {@link shellQuote}d. `=` counts as special: a bare `NAME=value` first word would be a variable assignment.
 */
export function shellWord(arg: string): string {
  return /^[A-Za-z0-9_@%+:,./-]+$/.test(arg) ? arg : shellQuote(arg);
}
