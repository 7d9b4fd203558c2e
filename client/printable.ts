/**
 * One line of text from data files (sample text, field names built from their keys, file names) made safe to print to a terminal:
 * control characters (newlines that would split the line, ANSI escape sequences that clear the screen or rewrite the title, NUL, carriage returns that
 * overprint a line) and the invisible characters that reorder or hide text (bidi overrides, as in "Trojan Source";
 * line separators) are shown as `\uXXXX` escapes instead of acting on the terminal. What is stored stays byte for byte
 * what the file held; only what is printed is escaped.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is this pattern's purpose
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
