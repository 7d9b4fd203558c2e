/**
 * The simulated student's competence model. A sample exercises a set of skills (from its structure: how many tools,
 * how many calls, which argument types, earlier turns, no call); the chance of answering it right is the product of
 * the student's competence at each. Training moves competence: exposure to correctly labelled samples of a skill raises
 * it with diminishing returns, exposure to wrongly labelled ones pulls it down.
 */
import type { FunctionDefinition, ParameterSchema } from '../core/schemas/function-def.js';
import { wireToolName } from '../core/schemas/function-def.js';
import type { ToolCall } from '../core/schemas/tool-call.js';

export const SKILLS = [
  'call',
  'no_call',
  'select',
  'many_tools',
  'parallel',
  'parallel3',
  'parallel_multiple',
  'float',
  'boolean',
  'array',
  'object',
  'enum',
  'optional',
  'multi_turn',
  'dependent',
  'unfamiliar',
] as const;
export type Skill = (typeof SKILLS)[number];

/** Sample-epochs seen per skill, split by whether the label was right. */
export interface Exposure {
  good: Partial<Record<Skill, number>>;
  bad: Partial<Record<Skill, number>>;
}

export const EMPTY_EXPOSURE: Exposure = { good: {}, bad: {} };

/** What the skills of a sample are computed from. */
export interface SkillInput {
  tools: readonly FunctionDefinition[];
  truth: readonly ToolCall[] | 'no_call';
  /** Non-system turns before the request. */
  priorTurns: number;
  /** A true call takes a value from an earlier turn. */
  dependent: boolean;
  /** The tools are not the sim world's (a BFCL question): skills learned on the world transfer only partly. */
  unfamiliar: boolean;
}

function typesOf(schema: ParameterSchema | undefined): string[] {
  const type = schema?.type;
  return type === undefined ? [] : Array.isArray(type) ? type : [type];
}

/** The skills a sample exercises. */
export function skillsOf(input: SkillInput): Skill[] {
  const skills = new Set<Skill>();
  if (input.truth === 'no_call') skills.add('no_call');
  else {
    skills.add('call');
    if (input.tools.length >= 2) skills.add('select');
    if (input.tools.length >= 5) skills.add('many_tools');
    if (input.truth.length >= 2) skills.add('parallel');
    if (input.truth.length >= 3) skills.add('parallel3');
    if (new Set(input.truth.map((c) => wireToolName(c.name))).size >= 2) skills.add('parallel_multiple');
    const byName = new Map(input.tools.map((t) => [wireToolName(t.name), t]));
    for (const call of input.truth) {
      const tool = byName.get(wireToolName(call.name));
      const properties = tool?.parameters?.properties ?? {};
      const required = new Set(tool?.parameters?.required ?? []);
      for (const name of Object.keys(call.arguments)) {
        const schema = properties[name];
        if (!required.has(name)) skills.add('optional');
        if (schema?.enum) skills.add('enum');
        for (const type of typesOf(schema)) {
          if (type === 'number' || type === 'float') skills.add('float');
          else if (type === 'boolean') skills.add('boolean');
          else if (type === 'array' || type === 'tuple') skills.add('array');
          else if (type === 'object' || type === 'dict') skills.add('object');
        }
      }
    }
  }
  if (input.priorTurns > 0) skills.add('multi_turn');
  if (input.dependent) skills.add('dependent');
  if (input.unfamiliar) skills.add('unfamiliar');
  return SKILLS.filter((s) => skills.has(s));
}

/** How the student learns. */
export interface LearningParams {
  /** Competence of the untrained base model at each skill. */
  base: Readonly<Record<Skill, number>>;
  /** What endless clean training approaches. */
  ceiling: number;
  /** Net sample-epochs of a skill that close 63% of the gap between base and ceiling. */
  learningScale: number;
  /** How much one wrongly labelled sample-epoch undoes, in correctly labelled ones. */
  wrongLabelWeight: number;
  /** Net negative sample-epochs that do 63% of the maximum harm. */
  harmScale: number;
  /** The most that wrong labels can take off a skill's base competence. */
  maxHarm: number;
}

export const DEFAULT_LEARNING: LearningParams = {
  base: {
    call: 0.93,
    no_call: 0.72,
    select: 0.95,
    many_tools: 0.95,
    parallel: 0.82,
    parallel3: 0.9,
    parallel_multiple: 0.9,
    float: 0.95,
    boolean: 0.96,
    array: 0.93,
    object: 0.9,
    enum: 0.97,
    optional: 0.95,
    multi_turn: 0.92,
    dependent: 0.8,
    unfamiliar: 0.9,
  },
  ceiling: 0.995,
  learningScale: 2000,
  wrongLabelWeight: 3,
  harmScale: 400,
  maxHarm: 0.35,
};

/** Skills that only practice on familiar tools improves slowly: BFCL questions use tools the world never trains on. */
const UNTRAINABLE: ReadonlySet<Skill> = new Set(['unfamiliar']);

/** Competence at one skill after the given exposure. */
export function competence(skill: Skill, exposure: Exposure, params: LearningParams = DEFAULT_LEARNING): number {
  const base = params.base[skill];
  if (UNTRAINABLE.has(skill)) return base;
  const net = (exposure.good[skill] ?? 0) - params.wrongLabelWeight * (exposure.bad[skill] ?? 0);
  if (net >= 0) return base + (params.ceiling - base) * (1 - Math.exp(-net / params.learningScale));
  return Math.max(0.02, base - params.maxHarm * (1 - Math.exp(net / params.harmScale)));
}

/** The chance of a right answer: the product of the competences a sample needs. */
export function successProbability(
  skills: readonly Skill[],
  exposure: Exposure,
  params: LearningParams = DEFAULT_LEARNING,
): number {
  let p = 1;
  for (const skill of skills) p *= competence(skill, exposure, params);
  return p;
}

/**
 * The skill most likely to have failed when an answer is wrong, drawn with weight (1 − competence): the error a wrong
 * answer shows follows from it (a weak `parallel` drops a call, a weak `float` gets a number wrong).
 */
export function failingSkill(
  skills: readonly Skill[],
  exposure: Exposure,
  u: number,
  params: LearningParams = DEFAULT_LEARNING,
): Skill {
  const weights = skills.map((s) => [s, 1 - competence(s, exposure, params)] as const);
  const total = weights.reduce((sum, [, w]) => sum + w, 0);
  let r = u * total;
  for (const [skill, weight] of weights) {
    r -= weight;
    if (r < 0) return skill;
  }
  return skills[skills.length - 1] ?? 'call';
}

/** Adds `times` sample-epochs of a sample's skills to an exposure (in place). */
export function addExposure(exposure: Exposure, skills: readonly Skill[], labelCorrect: boolean, times: number): void {
  const bucket = labelCorrect ? exposure.good : exposure.bad;
  for (const skill of skills) bucket[skill] = (bucket[skill] ?? 0) + times;
}
