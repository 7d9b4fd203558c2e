/**
 * Majority verdict over the votes actually cast, fixing the official code, whose threshold assumed three votes and so
 * never reached consensus with its default single judge (LOOPTOOL-METHOD.md §4.3). Consensus means a strict majority
 * of the valid votes; a single valid vote is its own consensus. Failed votes (unparseable replies) count for nothing.
 * With no valid vote the verdict is undefined. Ties go to the verdict seen first, without consensus.
 */
export function majorityVerdict<V extends string>(
  votes: readonly (V | undefined)[],
): { verdict: V | undefined; consensus: boolean; validVotes: number } {
  const counts = new Map<V, number>();
  for (const vote of votes) if (vote !== undefined) counts.set(vote, (counts.get(vote) ?? 0) + 1);
  let verdict: V | undefined;
  let top = 0;
  for (const [candidate, count] of counts) {
    if (count > top) {
      verdict = candidate;
      top = count;
    }
  }
  const validVotes = [...counts.values()].reduce((sum, n) => sum + n, 0);
  return { verdict, consensus: validVotes > 0 && top * 2 > validVotes, validVotes };
}
