/**
 * Why a record was not converted. Converters work on one record and know the field; the reader that fed them knows the
 * file and line and adds them with {@link locate}, so every rejection a person sees says file, line and field.
 */
import type { z } from 'zod';

export interface Rejection {
  /** Dotted path into the record (`messages[2].tool_calls[0].function.arguments`); empty for the record as a whole. */
  field: string;
  reason: string;
}

export interface LocatedRejection extends Rejection {
  file: string;
  /** 1-based line number. */
  line: number;
}

export type Converted<T> = { ok: true; value: T } | { ok: false; rejection: Rejection };

/** A failed conversion at `field`. */
export function reject<T>(field: string, reason: string): Converted<T> {
  return { ok: false, rejection: { field, reason } };
}

/** A successful conversion. */
export function accept<T>(value: T): Converted<T> {
  return { ok: true, value };
}

/** Adds the file and line a record came from. */
export function locate(rejection: Rejection, where: { file: string; line: number }): LocatedRejection {
  return { file: where.file, line: where.line, field: rejection.field, reason: rejection.reason };
}

/** `file:line: field: reason`, the one-line form printed to people. */
export function formatRejection(rejection: LocatedRejection): string {
  return `${rejection.file}:${rejection.line}: ${rejection.field ? `${rejection.field}: ` : ''}${rejection.reason}`;
}

/** Joins a base path and a zod issue path the way rejections spell fields: `a.b[0].c`. */
export function joinPath(base: string, path: readonly PropertyKey[]): string {
  let out = base;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** The first zod issue as a rejection (the first is the one a person fixes first). */
export function fromZodError(error: z.ZodError, base = ''): Rejection {
  const issue = error.issues[0];
  if (!issue) return { field: base, reason: 'invalid record' };
  return { field: joinPath(base, issue.path), reason: issue.message };
}

/** Validates with a zod schema, turning the first issue into a rejection at `base`. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, base = ''): Converted<z.infer<S>> {
  const result = schema.safeParse(value);
  return result.success ? accept(result.data) : { ok: false, rejection: fromZodError(result.error, base) };
}
