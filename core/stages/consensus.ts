import type { ConsensusBasis } from '../vocabulary.js';

/**
 * Majority verdict of a judge's votes. The official code's threshold assumed three votes and so never reached consensus
 * with its default single judge (LOOPTOOL-METHOD.md §4.3); counting only the votes that parsed overcorrects the other
 * way: 1 valid vote of 3 requested would rewrite a label. So by default consensus is a strict majority of the votes
 * **requested**, a failed vote (an unparseable reply) counting as an abstention: 3 requested need 2 agreeing. With
 * `basis: 'valid'` it is a strict majority of the valid votes (a single valid vote is its own consensus).
 * With no valid vote the verdict is undefined. Ties go to the verdict seen first, without consensus.
 */
export function majorityVerdict<V extends string>(
  votes: readonly (V | undefined)[],
  basis: ConsensusBasis = 'requested',
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
  const electorate = basis === 'requested' ? votes.length : validVotes;
  return { verdict, consensus: validVotes > 0 && top * 2 > electorate, validVotes };
}
