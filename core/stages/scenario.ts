import { sha256Hex } from '../hash.js';
import { SCENARIO_FOCUSES, type ScenarioFocus } from '../schemas/model-io.js';

/**
 * The scenario focus of one expansion slot, uniform over the four focuses and reproducible from the loop's seed and the
 * slot (not the loop's name: two loops with one seed and one dataset make the same datasets)
 * (the official code's `randint(0,6) % 4` gave the fourth focus half the chance of the others, §5.2).
 */
export function scenarioFocusFor(slot: {
  seed: number;
  iteration: number;
  seedSampleId: string;
  k: number;
}): ScenarioFocus {
  const digest = sha256Hex(`${slot.seed}\u0000${slot.iteration}\u0000${slot.seedSampleId}\u0000${slot.k}`);
  // 32 bits of a uniform hash mod 4 is uniform (4 divides 2^32).
  return SCENARIO_FOCUSES[Number.parseInt(digest.slice(0, 8), 16) % SCENARIO_FOCUSES.length]!;
}

/** What each focus asks of the generator (paper App. G, Figs. 13–14). */
export const SCENARIO_GUIDANCE: Record<ScenarioFocus, string> = {
  complexity_variation:
    'Vary the complexity: turn a simple request into a multi-step or multi-call one, or add an edge case.',
  user_persona: 'Change the user: a business user or a technical one, a novice or an expert, with matching wording.',
  interaction_style: 'Change how the conversation flows and how the request is phrased.',
  data_variation: 'Vary the data: types, ranges, formats, currencies, units and naming conventions of the values.',
};
