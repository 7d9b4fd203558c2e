import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/**
 * The fields of /proc/<pid>/stat after the command's closing parenthesis (the command may hold spaces): state is [0],
 * the parent's pid [1], utime and stime [11] and [12] (fields 3, 4, 14 and 15 of proc(5)).
 */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** A process's CPU time so far (user + system, from /proc), in seconds; undefined where /proc does not tell. */
export function processCpuSeconds(pid: number): number | undefined {
  const fields = statFields(pid);
  return fields ? (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND : undefined;
}

/**
 * CPU seconds so far of a server and its child processes (PostgreSQL's postmaster and its backends, WAL writer,
 * checkpointer…), from /proc; undefined where /proc does not tell. A backend that exited in between is not counted:
 * read it around work done on connections that stay open.
 */
export function processTreeCpuSeconds(rootPid: number): number | undefined {
  const root = processCpuSeconds(rootPid);
  if (root === undefined) return undefined;
  let total = root;
  for (const entry of readdirSync('/proc')) {
    if (entry.charCodeAt(0) < 0x30 || entry.charCodeAt(0) > 0x39) continue;
    const fields = statFields(entry);
    if (fields && Number(fields[1]) === rootPid)
      total += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  }
  return total;
}

/** A PostgreSQL cluster's first process, whose children are the backends doing the work (postmaster.pid, line 1). */
export function postmasterPid(pgdata: string): number {
  return Number(readFileSync(path.join(pgdata, 'postmaster.pid'), 'utf8').split('\n')[0]);
}
