/** An error and its causes on one line: Temporal wraps the reason (e.g. an update validator's message) in `cause`. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let current: unknown = err; current && parts.length < 5; current = (current as { cause?: unknown }).cause) {
    const message = current instanceof Error ? current.message : String(current);
    if (message && !parts.includes(message)) parts.push(message);
  }
  return parts.join(': ');
}
