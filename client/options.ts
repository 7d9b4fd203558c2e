import { InvalidArgumentError } from 'commander';
import { nameProblem, type NameKind } from '../core/names.js';

/**
 * Parsers for commander's `argParser`: a value that is not what the option takes is refused with the rule, before the
 * command runs. `Number.parseInt('abc')` is NaN, and a NaN limit compares false with everything, so an unchecked
 * `--max-line-chars abc` silently turned the limit off; these never let such a value through.
 */

/** Whole numbers from `min` to `max`, written as digits (no `1e3`, `0x10`, `12abc` or empty value). */
export function integerOption(min: number, max: number = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const text = value.trim();
    const n = /^[+-]?\d+$/.test(text) ? Number(text) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(
        `expected a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`}, got ${JSON.stringify(value)}`,
      );
    return n;
  };
}

/** A whole number of at least 1. */
export const positiveInteger = integerOption(1);

/** Finite decimal numbers from `min` to `max` (`0.5`, `2`, `1e-3`). */
export function numberOption(min: number, max: number): (value: string) => number {
  return (value) => {
    const text = value.trim();
    const n = text === '' ? Number.NaN : Number(text);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new InvalidArgumentError(`expected a number from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return n;
  };
}

/** A loop or dataset name, checked with the one rule (core/names.ts) before anything is read. */
export function nameOption(kind: NameKind): (value: string) => string {
  return (value) => {
    const problem = nameProblem(kind, value);
    if (problem) throw new InvalidArgumentError(problem);
    return value;
  };
}
