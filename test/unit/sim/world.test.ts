import { describe, expect, test } from 'vitest';
import { canonicalJson, JsonFloat } from '../../../core/json.js';
import { FunctionDefinition } from '../../../core/schemas/function-def.js';
import type { ChatMessage } from '../../../core/schemas/messages.js';
import { composeSample, PROFILES } from '../../../sim/compose.js';
import { Rng } from '../../../sim/random.js';
import { getWorld, type CompiledTemplate } from '../../../sim/world.js';

const world = getWorld();

/** A conversation whose last turn is one template's sentence, with an earlier turn naming the entity refs point at. */
function conversationFor(template: CompiledTemplate, rng: Rng): { messages: ChatMessage[]; expected: unknown } {
  const refs: Record<string, string> = {};
  const history: ChatMessage[] = [];
  for (const ref of template.refs) {
    const value = world.generateParam(template.tool, ref, rng) as string;
    refs[ref] = value;
    history.push(
      { role: 'user', content: 'Find some options.' },
      { role: 'assistant', content: `I found 2 options: ${value} at 08:00 and another one later.` },
    );
  }
  const plan = world.planClause(template, rng, refs);
  return {
    messages: [...history, { role: 'user', content: world.renderClause(plan) }],
    expected: [{ name: template.tool.name, arguments: plan.args }],
  };
}

describe('the sim world', () => {
  test('has a few dozen tools across domains with every argument type the brief names', () => {
    expect(world.tools.size).toBeGreaterThanOrEqual(30);
    expect(new Set([...world.tools.values()].map((t) => t.domain)).size).toBeGreaterThanOrEqual(8);
    const types = new Set<string>();
    let optional = 0;
    for (const tool of world.tools.values()) {
      const definition = FunctionDefinition.parse(world.definition(tool.name));
      for (const [name, schema] of Object.entries(definition.parameters?.properties ?? {})) {
        types.add(String(schema.type));
        if (schema.enum) types.add('enum');
        if (!definition.parameters?.required?.includes(name)) optional++;
      }
    }
    expect([...types].sort()).toEqual(['array', 'boolean', 'enum', 'integer', 'number', 'object', 'string']);
    expect(optional).toBeGreaterThan(20);
  });

  test('solve reads back the calls of every template, for many random fillings', () => {
    for (const template of world.templates) {
      for (let i = 0; i < 40; i++) {
        const { messages, expected } = conversationFor(template, new Rng(`${template.id}/${i}`));
        const solved = world.solve({ tools: [world.definition(template.tool.name)], messages });
        expect(canonicalJson(solved), `${template.id}: ${messages.at(-1)?.content}`).toBe(canonicalJson(expected));
      }
    }
  });

  test('every rendered sentence matches exactly one template, so the truth is never ambiguous', () => {
    for (const template of world.templates) {
      for (let i = 0; i < 15; i++) {
        const { messages } = conversationFor(template, new Rng(`unique/${template.id}/${i}`));
        const sentence = messages.at(-1)?.content as string;
        const matching = world.templates.filter((t) => t.regex.test(sentence)).map((t) => t.id);
        expect(matching, sentence).toEqual([template.id]);
      }
    }
  });

  test('solve round-trips single, distractor, parallel, multi-turn, dependent and irrelevance conversations', () => {
    for (const profile of PROFILES) {
      for (let i = 0; i < 300; i++) {
        const sample = composeSample(world, profile, new Rng(`profile/${profile}/${i}`));
        expect(canonicalJson(world.solve({ tools: sample.tools, messages: sample.messages })), `${profile} ${i}`).toBe(
          canonicalJson(sample.truth),
        );
      }
    }
  });

  test('profiles have the structure their names promise', () => {
    const rng = new Rng('structure');
    const parallel = composeSample(world, 'parallel', rng);
    expect((parallel.truth as unknown[]).length).toBeGreaterThanOrEqual(2);
    expect(parallel.tools).toHaveLength(1);
    const multiple = composeSample(world, 'multiple', rng);
    expect(multiple.tools.length).toBeGreaterThanOrEqual(2);
    const dependent = composeSample(world, 'dependent', rng);
    expect(dependent.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'tool', 'assistant', 'user']);
    expect(world.analyze({ tools: dependent.tools, messages: dependent.messages })?.dependent).toBe(true);
    const irrelevant = composeSample(world, 'irrelevance', rng);
    expect(irrelevant.truth).toBe('no_call');
  });

  test('a request for a tool that is not offered, or chit-chat, needs no call; text the world does not know is unknown', () => {
    const forecast = world.templatesOf('get_forecast')[0] as CompiledTemplate;
    const text = world.renderClause(world.planClause(forecast, new Rng(1)));
    expect(
      world.solve({ tools: [world.definition('convert_currency')], messages: [{ role: 'user', content: text }] }),
    ).toBe('no_call');
    expect(
      world.solve({
        tools: [world.definition('convert_currency')],
        messages: [{ role: 'user', content: 'Tell me a joke about penguins.' }],
      }),
    ).toBe('no_call');
    expect(
      world.solve({
        tools: [world.definition('convert_currency')],
        messages: [{ role: 'user', content: 'Calculate the area of a circle with radius 3.' }],
      }),
    ).toBeUndefined();
  });

  test('greetings, personas and connectors around requests do not change the truth', () => {
    const solved = world.solve({
      tools: [world.definition('get_forecast'), world.definition('convert_currency')],
      messages: [
        {
          role: 'user',
          content:
            "Hi there! I'm a travel agent. What is the weather forecast for Paris for the next 3 days? Also, convert 12.5 USD to EUR. Thanks!",
        },
      ],
    });
    expect(canonicalJson(solved)).toBe(
      canonicalJson([
        { name: 'get_forecast', arguments: { city: 'Paris', days: 3 } },
        {
          name: 'convert_currency',
          arguments: { amount: new JsonFloat(12.5), from_currency: 'USD', to_currency: 'EUR' },
        },
      ]),
    );
  });

  test('floats stay floats: an amount of 40.0 is the float 40.0, never the integer 40', () => {
    const solved = world.solve({
      tools: [world.definition('convert_currency')],
      messages: [{ role: 'user', content: 'Convert 40.0 USD to JPY.' }],
    });
    expect(Array.isArray(solved) && solved[0]?.arguments.amount).toBeInstanceOf(JsonFloat);
    expect(canonicalJson(solved)).toContain('"amount":40.0');
  });

  test('a dependent request takes the id from the most recent earlier turn that names one', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Find flights from JFK to LAX on 2025-03-04.' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            type: 'function',
            function: { name: 'search_flights', arguments: { origin: 'JFK', destination: 'LAX', date: '2025-03-04' } },
          },
        ],
      },
      { role: 'tool', content: '{"flights": [{"flight_id": "FL1234"}, {"flight_id": "FL5678"}]}' },
      { role: 'user', content: 'Book the first flight with 2 seats in economy class.' },
    ];
    const tools = [world.definition('search_flights'), world.definition('book_flight')];
    expect(world.solve({ tools, messages })).toEqual([
      { name: 'book_flight', arguments: { flight_id: 'FL1234', passengers: 2, cabin_class: 'economy' } },
    ]);
    expect(world.solve({ tools, messages: messages.slice(3) })).toBeUndefined();
  });
});
