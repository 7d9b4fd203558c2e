import { InvalidArgumentError } from 'commander';
import { describe, expect, test } from 'vitest';
import { integerOption, nameOption, numberOption, positiveInteger } from '../../../client/options.js';

/** The message a parser refuses a value with (the test fails if it accepts it). */
function refusal(parse: (value: string) => unknown, value: string): string {
  try {
    parse(value);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return (err as Error).message;
  }
  throw new Error(`${JSON.stringify(value)} was accepted`);
}

describe('numeric and name options of the CLI', () => {
  test('whole numbers: digits only, in range; anything else is refused with the rule and the value', () => {
    expect(positiveInteger('4096')).toBe(4096);
    expect(integerOption(0, 10)('0')).toBe(0);
    for (const value of ['abc', '', ' ', '12abc', '1e3', '0x10', '1.5', '0', '-5', 'NaN', 'Infinity'])
      expect(refusal(positiveInteger, value)).toBe(
        `expected a whole number of at least 1, got ${JSON.stringify(value)}`,
      );
    expect(refusal(integerOption(1, 100), '101')).toBe('expected a whole number from 1 to 100, got "101"');
    expect(refusal(integerOption(0, 65535), '')).toMatch(/from 0 to 65535/);
  });

  test('decimal numbers: finite and in range', () => {
    expect(numberOption(0, 1)('0.25')).toBe(0.25);
    expect(numberOption(0, 100)('1e1')).toBe(10);
    for (const value of ['', 'abc', 'NaN', 'Infinity', '-0.1', '1.01'])
      expect(refusal(numberOption(0, 1), value)).toBe(`expected a number from 0 to 1, got ${JSON.stringify(value)}`);
  });

  test('names: the rule of core/names.ts', () => {
    expect(nameOption('loop')('my-loop')).toBe('my-loop');
    expect(refusal(nameOption('dataset'), '../etc')).toMatch(
      /^invalid dataset name "\.\.\/etc": use lowercase letters/,
    );
  });
});
