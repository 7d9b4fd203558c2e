/**
 * The sim world's tool catalogue: a few dozen tools across domains, each with typed parameters and request templates.
 * A template is one sentence with `{slot}` placeholders; its slots say which arguments a request made from it carries,
 * so the true calls for a request can always be read back from its text (see world.ts).
 */
import type { Rng } from './random.js';
import type { VocabName } from './vocab.js';

/** Entities that one call produces and a later turn refers to ("book the first flight"). */
export type EntityKind = 'flight' | 'product' | 'event' | 'restaurant';

/** How a parameter's values are drawn, rendered into text and recognised in it. */
export type ValueSpec =
  | { kind: 'vocab'; vocab: VocabName }
  | { kind: 'pattern'; regex: string; generate: (rng: Rng) => string; entity?: EntityKind }
  /** Free text the template puts between double quotes; drawn from a vocabulary, recognised as any quoted text. */
  | { kind: 'quoted'; vocab: VocabName }
  | { kind: 'integer'; min: number; max: number }
  /** Always a float (JSON `12.5`, `40.0`), written with a decimal point in the text. */
  | { kind: 'number'; min: number; max: number; decimals: number }
  /** Rendered as one of two phrases: the first means true. */
  | { kind: 'boolean'; phrases: readonly [string, string] }
  | { kind: 'enum'; values: readonly string[] }
  /** A list rendered "a", "a and b", "a, b and c". Items are vocab, pattern, enum or number values. */
  | { kind: 'list'; item: ValueSpec; min: number; max: number }
  /** A list of objects, each rendered with `format` (its `{field}` slots), joined like a list. */
  | { kind: 'object-list'; format: string; fields: Readonly<Record<string, ValueSpec>>; min: number; max: number }
  /** An object whose fields the template names one by one as `{param.field}`. */
  | { kind: 'object'; fields: Readonly<Record<string, ValueSpec>> };

export interface ParamSpec {
  name: string;
  description: string;
  spec: ValueSpec;
  required: boolean;
}

export interface TemplateSpec {
  /** One sentence ending in `.` or `?`, starting with a literal word. */
  text: string;
  /** Parameters the template does not name but takes from an earlier turn (the entity the previous call returned). */
  refs?: readonly string[];
}

export interface ToolSpec {
  name: string;
  domain: string;
  description: string;
  params: readonly ParamSpec[];
  templates: readonly TemplateSpec[];
  /** The entity a call to this tool returns (it then appears in the tool result and the assistant's summary). */
  produces?: EntityKind;
}

const digits = (rng: Rng, n: number): string => Array.from({ length: n }, () => String(rng.int(0, 9))).join('');
const pad2 = (n: number): string => String(n).padStart(2, '0');

const DATE: ValueSpec = {
  kind: 'pattern',
  regex: '\\d{4}-\\d{2}-\\d{2}',
  generate: (rng) => `2025-${pad2(rng.int(1, 12))}-${pad2(rng.int(1, 28))}`,
};
const TIME: ValueSpec = {
  kind: 'pattern',
  regex: '\\d{2}:\\d{2}',
  generate: (rng) => `${pad2(rng.int(6, 21))}:${pad2(rng.pick([0, 15, 30, 45]))}`,
};

/** Regexes of entity ids, used to find the entity an earlier turn produced. */
export const ENTITY_PATTERNS: Readonly<Record<EntityKind, string>> = {
  flight: 'FL\\d{4}',
  product: 'P-\\d{5}',
  event: 'EV-\\d{4}',
  restaurant: 'R-\\d{4}',
};
const FLIGHT_ID: ValueSpec = {
  kind: 'pattern',
  regex: ENTITY_PATTERNS.flight,
  generate: (rng) => `FL${digits(rng, 4)}`,
  entity: 'flight',
};
const PRODUCT_ID: ValueSpec = {
  kind: 'pattern',
  regex: ENTITY_PATTERNS.product,
  generate: (rng) => `P-${digits(rng, 5)}`,
  entity: 'product',
};
const EVENT_ID: ValueSpec = {
  kind: 'pattern',
  regex: ENTITY_PATTERNS.event,
  generate: (rng) => `EV-${digits(rng, 4)}`,
  entity: 'event',
};
const RESTAURANT_ID: ValueSpec = {
  kind: 'pattern',
  regex: ENTITY_PATTERNS.restaurant,
  generate: (rng) => `R-${digits(rng, 4)}`,
  entity: 'restaurant',
};
const ORDER_ID: ValueSpec = { kind: 'pattern', regex: 'ORD-\\d{6}', generate: (rng) => `ORD-${digits(rng, 6)}` };

const CITY: ValueSpec = { kind: 'vocab', vocab: 'city' };
const CABIN: ValueSpec = { kind: 'enum', values: ['economy', 'premium economy', 'business', 'first'] };
const ROOM: ValueSpec = { kind: 'enum', values: ['living room', 'bedroom', 'kitchen', 'office', 'hallway'] };
const LANGUAGE: ValueSpec = {
  kind: 'enum',
  values: ['French', 'German', 'Spanish', 'Italian', 'Japanese', 'Portuguese'],
};

const p = (name: string, description: string, spec: ValueSpec, required = true): ParamSpec => ({
  name,
  description,
  spec,
  required,
});

/** The catalogue. Tool names are unique and valid OpenAI function names, so the wire form equals the name. */
export const CATALOGUE: readonly ToolSpec[] = [
  // Weather
  {
    name: 'get_current_weather',
    domain: 'weather',
    description: 'Get the current weather conditions for a city.',
    params: [
      p('city', 'The city name.', CITY),
      p('units', 'Temperature units.', { kind: 'enum', values: ['celsius', 'fahrenheit'] }, false),
    ],
    templates: [
      { text: "What's the current weather in {city}?" },
      { text: 'Tell me the current weather in {city} in {units}.' },
    ],
  },
  {
    name: 'get_forecast',
    domain: 'weather',
    description: 'Get a multi-day weather forecast for a city.',
    params: [
      p('city', 'The city name.', CITY),
      p('days', 'Number of days to forecast (1-14).', { kind: 'integer', min: 1, max: 14 }),
      p(
        'include_hourly',
        'Whether to include hourly details.',
        { kind: 'boolean', phrases: ['with hourly details', 'without hourly details'] },
        false,
      ),
    ],
    templates: [
      { text: 'What is the weather forecast for {city} for the next {days} days?' },
      { text: 'Get me a {days}-day forecast for {city} {include_hourly}.' },
    ],
  },
  {
    name: 'get_air_quality',
    domain: 'weather',
    description: 'Get air quality readings for a city.',
    params: [
      p('city', 'The city name.', CITY),
      p(
        'pollutants',
        'Pollutants to report.',
        { kind: 'list', item: { kind: 'vocab', vocab: 'pollutant' }, min: 1, max: 3 },
        false,
      ),
    ],
    templates: [
      { text: 'How is the air quality in {city} today?' },
      { text: 'Check the {pollutants} levels in {city}.' },
    ],
  },
  // Travel
  {
    name: 'search_flights',
    domain: 'travel',
    description: 'Search for flights between two airports on a date.',
    produces: 'flight',
    params: [
      p('origin', 'IATA code of the departure airport.', { kind: 'vocab', vocab: 'airport' }),
      p('destination', 'IATA code of the arrival airport.', { kind: 'vocab', vocab: 'airport' }),
      p('date', 'Departure date (YYYY-MM-DD).', DATE),
      p('cabin_class', 'Cabin class.', CABIN, false),
      p('max_stops', 'Maximum number of stops.', { kind: 'integer', min: 0, max: 2 }, false),
    ],
    templates: [
      { text: 'Find flights from {origin} to {destination} on {date}.' },
      {
        text: 'Search for {cabin_class} flights from {origin} to {destination} on {date} with at most {max_stops} stops.',
      },
    ],
  },
  {
    name: 'book_flight',
    domain: 'travel',
    description: 'Book seats on a flight found by search_flights.',
    params: [
      p('flight_id', 'The flight id returned by search_flights.', FLIGHT_ID),
      p('passengers', 'Number of seats.', { kind: 'integer', min: 1, max: 6 }),
      p('cabin_class', 'Cabin class.', CABIN),
    ],
    templates: [
      { text: 'Book flight {flight_id} with {passengers} seats in {cabin_class} class.' },
      { text: 'Book the first flight with {passengers} seats in {cabin_class} class.', refs: ['flight_id'] },
    ],
  },
  {
    name: 'find_hotels',
    domain: 'travel',
    description: 'Find hotels in a city for a stay.',
    params: [
      p('city', 'The city name.', CITY),
      p('check_in', 'Check-in date (YYYY-MM-DD).', DATE),
      p('nights', 'Number of nights.', { kind: 'integer', min: 1, max: 14 }),
      p(
        'max_price_per_night',
        'Maximum price per night in USD.',
        { kind: 'number', min: 60, max: 450, decimals: 1 },
        false,
      ),
      p(
        'amenities',
        'Required amenities.',
        { kind: 'list', item: { kind: 'vocab', vocab: 'amenity' }, min: 1, max: 3 },
        false,
      ),
    ],
    templates: [
      { text: 'Find hotels in {city} checking in on {check_in} for {nights} nights.' },
      { text: 'Look for hotels in {city} from {check_in} for {nights} nights under ${max_price_per_night} per night.' },
      { text: 'Find hotels in {city} from {check_in} for {nights} nights with {amenities}.' },
    ],
  },
  {
    name: 'get_flight_status',
    domain: 'travel',
    description: 'Get the live status of a flight.',
    params: [
      p('flight_number', 'Airline code and number, e.g. BA117.', {
        kind: 'pattern',
        regex: '(?:AA|BA|LH|AF|DL|UA|KL|QF|NH|EK)\\d{3}',
        generate: (rng) =>
          `${rng.pick(['AA', 'BA', 'LH', 'AF', 'DL', 'UA', 'KL', 'QF', 'NH', 'EK'])}${rng.int(100, 999)}`,
      }),
      p('date', 'Flight date (YYYY-MM-DD).', DATE, false),
    ],
    templates: [
      { text: 'What is the status of flight {flight_number}?' },
      { text: 'Check whether flight {flight_number} on {date} is delayed.' },
    ],
  },
  {
    name: 'convert_timezone',
    domain: 'travel',
    description: 'Convert a clock time between time zones.',
    params: [
      p('time', 'Time as HH:MM.', TIME),
      p('from_timezone', 'Source IANA time zone.', { kind: 'vocab', vocab: 'timezone' }),
      p('to_timezone', 'Target IANA time zone.', { kind: 'vocab', vocab: 'timezone' }),
    ],
    templates: [
      { text: 'Convert {time} from {from_timezone} to {to_timezone}.' },
      { text: 'What time is {time} {from_timezone} in {to_timezone}?' },
    ],
  },
  // Finance
  {
    name: 'get_stock_price',
    domain: 'finance',
    description: 'Get the latest trading price of a stock.',
    params: [
      p('symbol', 'Ticker symbol.', { kind: 'vocab', vocab: 'ticker' }),
      p('exchange', 'Stock exchange.', { kind: 'enum', values: ['NASDAQ', 'NYSE', 'LSE', 'TSE'] }, false),
    ],
    templates: [
      { text: "What's the latest price of {symbol}?" },
      { text: 'Get the price of {symbol} on the {exchange}.' },
    ],
  },
  {
    name: 'convert_currency',
    domain: 'finance',
    description: 'Convert an amount between currencies at the current rate.',
    params: [
      p('amount', 'Amount to convert.', { kind: 'number', min: 5, max: 5000, decimals: 2 }),
      p('from_currency', 'ISO code of the source currency.', { kind: 'vocab', vocab: 'currency' }),
      p('to_currency', 'ISO code of the target currency.', { kind: 'vocab', vocab: 'currency' }),
    ],
    templates: [
      { text: 'Convert {amount} {from_currency} to {to_currency}.' },
      { text: 'How much is {amount} {from_currency} in {to_currency}?' },
    ],
  },
  {
    name: 'calculate_loan_payment',
    domain: 'finance',
    description: 'Calculate the monthly payment of an amortised loan.',
    params: [
      p('principal', 'Loan amount.', { kind: 'number', min: 1000, max: 500000, decimals: 0 }),
      p('annual_rate', 'Annual interest rate in percent.', { kind: 'number', min: 1, max: 12, decimals: 2 }),
      p('years', 'Loan term in years.', { kind: 'integer', min: 1, max: 30 }),
    ],
    templates: [
      { text: 'Calculate the monthly payment on a loan of {principal} at {annual_rate} percent for {years} years.' },
      { text: 'What would I pay per month for a {years}-year loan of {principal} at {annual_rate} percent?' },
    ],
  },
  {
    name: 'get_exchange_rate_history',
    domain: 'finance',
    description: 'Get the daily exchange rate between two currencies over a period.',
    params: [
      p('base', 'Base currency ISO code.', { kind: 'vocab', vocab: 'currency' }),
      p('quote', 'Quote currency ISO code.', { kind: 'vocab', vocab: 'currency' }),
      p('days', 'Number of past days.', { kind: 'integer', min: 7, max: 365 }),
    ],
    templates: [{ text: 'Show the {base} to {quote} exchange rate over the last {days} days.' }],
  },
  {
    name: 'create_budget',
    domain: 'finance',
    description: 'Create a monthly spending budget.',
    params: [
      p('name', 'Budget name.', { kind: 'vocab', vocab: 'budgetName' }),
      p('monthly_limit', 'Monthly limit in the account currency.', {
        kind: 'number',
        min: 100,
        max: 8000,
        decimals: 1,
      }),
      p('categories', 'Spending categories covered.', {
        kind: 'list',
        item: { kind: 'vocab', vocab: 'budgetCategory' },
        min: 1,
        max: 3,
      }),
      p(
        'rollover',
        'Whether unspent money rolls over.',
        { kind: 'boolean', phrases: ['with rollover', 'without rollover'] },
        false,
      ),
    ],
    templates: [
      { text: 'Create a budget called {name} with a monthly limit of {monthly_limit} covering {categories}.' },
      { text: 'Set up a budget named {name} with a limit of {monthly_limit} per month for {categories} {rollover}.' },
    ],
  },
  {
    name: 'transfer_funds',
    domain: 'finance',
    description: 'Transfer money between the user’s accounts.',
    params: [
      p('from_account', 'Source account.', { kind: 'vocab', vocab: 'account' }),
      p('to_account', 'Destination account.', { kind: 'vocab', vocab: 'account' }),
      p('amount', 'Amount to move.', { kind: 'number', min: 10, max: 9000, decimals: 2 }),
      p('memo', 'Memo on the transfer.', { kind: 'quoted', vocab: 'subject' }, false),
    ],
    templates: [
      { text: 'Transfer {amount} from my {from_account} account to my {to_account} account.' },
      { text: 'Move {amount} from {from_account} to {to_account} with the memo "{memo}".' },
    ],
  },
  // Calendar
  {
    name: 'create_event',
    domain: 'calendar',
    description: 'Create a calendar event.',
    params: [
      p('title', 'Event title.', { kind: 'quoted', vocab: 'eventTitle' }),
      p('date', 'Date (YYYY-MM-DD).', DATE),
      p('start_time', 'Start time (HH:MM).', TIME),
      p('duration_minutes', 'Duration in minutes.', { kind: 'integer', min: 15, max: 180 }),
      p(
        'attendees',
        'Attendee email addresses.',
        { kind: 'list', item: { kind: 'vocab', vocab: 'email' }, min: 1, max: 3 },
        false,
      ),
    ],
    templates: [
      { text: 'Schedule "{title}" on {date} at {start_time} for {duration_minutes} minutes.' },
      {
        text: 'Create a meeting "{title}" on {date} at {start_time} lasting {duration_minutes} minutes with {attendees}.',
      },
    ],
  },
  {
    name: 'list_events',
    domain: 'calendar',
    description: 'List the events on a date.',
    produces: 'event',
    params: [
      p('date', 'Date (YYYY-MM-DD).', DATE),
      p('calendar', 'Which calendar.', { kind: 'enum', values: ['work', 'personal', 'family'] }, false),
    ],
    templates: [{ text: "What's on my calendar for {date}?" }, { text: 'List my {calendar} events on {date}.' }],
  },
  {
    name: 'cancel_event',
    domain: 'calendar',
    description: 'Cancel a calendar event by id.',
    params: [
      p('event_id', 'The event id returned by list_events.', EVENT_ID),
      p('notify_attendees', 'Whether to notify attendees.', {
        kind: 'boolean',
        phrases: ['notify the attendees', "don't notify anyone"],
      }),
    ],
    templates: [
      { text: 'Cancel event {event_id} and {notify_attendees}.' },
      { text: 'Cancel the first event and {notify_attendees}.', refs: ['event_id'] },
    ],
  },
  {
    name: 'set_reminder',
    domain: 'calendar',
    description: 'Set a reminder at a time.',
    params: [
      p('text', 'What to be reminded of.', { kind: 'quoted', vocab: 'reminder' }),
      p('time', 'Time (HH:MM).', TIME),
      p('date', 'Date (YYYY-MM-DD); today when omitted.', DATE, false),
    ],
    templates: [{ text: 'Set a reminder "{text}" for {time}.' }, { text: 'Remind me "{text}" at {time} on {date}.' }],
  },
  // Messaging
  {
    name: 'send_email',
    domain: 'messaging',
    description: 'Send an email.',
    params: [
      p('to', 'Recipient addresses.', { kind: 'list', item: { kind: 'vocab', vocab: 'email' }, min: 1, max: 2 }),
      p('subject', 'Subject line.', { kind: 'quoted', vocab: 'subject' }),
      p('body', 'Message body.', { kind: 'quoted', vocab: 'body' }),
      p('cc', 'CC addresses.', { kind: 'list', item: { kind: 'vocab', vocab: 'email' }, min: 1, max: 2 }, false),
    ],
    templates: [
      { text: 'Send an email to {to} with the subject "{subject}" saying "{body}".' },
      { text: 'Email {to} and cc {cc} with the subject "{subject}" and the message "{body}".' },
    ],
  },
  {
    name: 'send_sms',
    domain: 'messaging',
    description: 'Send a text message to a phone number.',
    params: [
      p('phone_number', 'Phone number in E.164 format.', {
        kind: 'pattern',
        regex: '\\+1\\d{10}',
        generate: (rng) => `+1${rng.int(2, 9)}${digits(rng, 9)}`,
      }),
      p('message', 'Message text.', { kind: 'quoted', vocab: 'shortMessage' }),
    ],
    templates: [
      { text: 'Text {phone_number} the message "{message}".' },
      { text: 'Send an SMS saying "{message}" to {phone_number}.' },
    ],
  },
  {
    name: 'post_to_channel',
    domain: 'messaging',
    description: 'Post a message to a team chat channel.',
    params: [
      p('channel', 'Channel name, with #.', { kind: 'vocab', vocab: 'channel' }),
      p('message', 'Message text.', { kind: 'quoted', vocab: 'shortMessage' }),
      p('pin', 'Whether to pin the message.', { kind: 'boolean', phrases: ['pin it', "don't pin it"] }, false),
    ],
    templates: [
      { text: 'Post "{message}" to the {channel} channel.' },
      { text: 'Post "{message}" in {channel} and {pin}.' },
    ],
  },
  {
    name: 'translate_text',
    domain: 'messaging',
    description: 'Translate text into another language.',
    params: [
      p('text', 'Text to translate.', { kind: 'quoted', vocab: 'phrase' }),
      p('target_language', 'Target language.', LANGUAGE),
      p('source_language', 'Source language; detected when omitted.', LANGUAGE, false),
    ],
    templates: [
      { text: 'Translate "{text}" into {target_language}.' },
      { text: 'Translate "{text}" from {source_language} into {target_language}.' },
    ],
  },
  // Math
  {
    name: 'calculate_compound_interest',
    domain: 'math',
    description: 'Compute compound interest on a principal.',
    params: [
      p('principal', 'Initial amount.', { kind: 'number', min: 100, max: 100000, decimals: 1 }),
      p('rate', 'Annual interest rate in percent.', { kind: 'number', min: 0.5, max: 15, decimals: 2 }),
      p('years', 'Number of years.', { kind: 'integer', min: 1, max: 40 }),
      p('compounds_per_year', 'Compounding periods per year.', { kind: 'integer', min: 1, max: 12 }, false),
    ],
    templates: [
      { text: 'Compute the compound interest on {principal} at {rate} percent for {years} years.' },
      {
        text: 'Compute the compound interest on {principal} at {rate} percent for {years} years compounded {compounds_per_year} times a year.',
      },
    ],
  },
  {
    name: 'solve_quadratic',
    domain: 'math',
    description: 'Solve a*x^2 + b*x + c = 0.',
    params: [
      p('a', 'Coefficient a (non-zero).', { kind: 'integer', min: 1, max: 9 }),
      p('b', 'Coefficient b.', { kind: 'integer', min: -20, max: 20 }),
      p('c', 'Coefficient c.', { kind: 'integer', min: -20, max: 20 }),
    ],
    templates: [
      { text: 'Solve the quadratic equation with a = {a}, b = {b} and c = {c}.' },
      { text: 'Find the roots of {a}x^2 + ({b})x + ({c}) = 0.' },
    ],
  },
  {
    name: 'compute_statistics',
    domain: 'math',
    description: 'Compute summary statistics of a list of numbers.',
    params: [
      p('values', 'The numbers.', {
        kind: 'list',
        item: { kind: 'number', min: 0, max: 100, decimals: 1 },
        min: 3,
        max: 5,
      }),
      p('measures', 'Statistics to compute.', {
        kind: 'list',
        item: { kind: 'enum', values: ['mean', 'median', 'variance', 'standard deviation', 'range'] },
        min: 1,
        max: 2,
      }),
    ],
    templates: [
      { text: 'Compute the {measures} of {values}.' },
      { text: 'Give me the {measures} for the numbers {values}.' },
    ],
  },
  {
    name: 'convert_units',
    domain: 'math',
    description: 'Convert a quantity between units of length, mass or volume.',
    params: [
      p('value', 'The quantity.', { kind: 'number', min: 0.5, max: 1000, decimals: 1 }),
      p('from_unit', 'Source unit.', {
        kind: 'enum',
        values: ['kilometers', 'miles', 'kilograms', 'pounds', 'liters', 'gallons'],
      }),
      p('to_unit', 'Target unit.', {
        kind: 'enum',
        values: ['kilometers', 'miles', 'kilograms', 'pounds', 'liters', 'gallons'],
      }),
    ],
    templates: [
      { text: 'Convert {value} {from_unit} to {to_unit}.' },
      { text: 'How many {to_unit} are {value} {from_unit}?' },
    ],
  },
  // E-commerce
  {
    name: 'search_products',
    domain: 'ecommerce',
    description: 'Search the product catalogue.',
    produces: 'product',
    params: [
      p('query', 'Search terms.', { kind: 'vocab', vocab: 'product' }),
      p('max_price', 'Maximum price in USD.', { kind: 'number', min: 10, max: 900, decimals: 2 }, false),
      p(
        'category',
        'Product category.',
        { kind: 'enum', values: ['electronics', 'home', 'sports', 'kitchen', 'office'] },
        false,
      ),
      p(
        'in_stock_only',
        'Only items in stock.',
        { kind: 'boolean', phrases: ['that are in stock', 'including out-of-stock items'] },
        false,
      ),
    ],
    templates: [
      { text: 'Search for {query}.' },
      { text: 'Find {query} under ${max_price} in {category}.' },
      { text: 'Search for {query} {in_stock_only}.' },
    ],
  },
  {
    name: 'add_to_cart',
    domain: 'ecommerce',
    description: 'Add a product to the shopping cart.',
    params: [
      p('product_id', 'The product id returned by search_products.', PRODUCT_ID),
      p('quantity', 'How many.', { kind: 'integer', min: 1, max: 5 }),
    ],
    templates: [
      { text: 'Add product {product_id} to my cart with quantity {quantity}.' },
      { text: 'Add the first product to my cart with quantity {quantity}.', refs: ['product_id'] },
    ],
  },
  {
    name: 'track_order',
    domain: 'ecommerce',
    description: 'Track a placed order.',
    params: [p('order_id', 'Order id.', ORDER_ID)],
    templates: [{ text: 'Where is my order {order_id}?' }, { text: 'Track order {order_id} for me.' }],
  },
  {
    name: 'place_order',
    domain: 'ecommerce',
    description: 'Place an order for items by SKU.',
    params: [
      p('items', 'Order lines.', {
        kind: 'object-list',
        format: '{quantity} x {sku}',
        fields: {
          sku: { kind: 'pattern', regex: 'SKU-\\d{4}', generate: (rng) => `SKU-${digits(rng, 4)}` },
          quantity: { kind: 'integer', min: 1, max: 9 },
        },
        min: 1,
        max: 3,
      }),
      p('shipping_speed', 'Shipping speed.', { kind: 'enum', values: ['standard', 'express', 'overnight'] }),
      p(
        'gift_wrap',
        'Whether to gift wrap.',
        { kind: 'boolean', phrases: ['and gift wrap it', 'without gift wrap'] },
        false,
      ),
    ],
    templates: [
      { text: 'Place an order for {items} with {shipping_speed} shipping.' },
      { text: 'Order {items} with {shipping_speed} shipping {gift_wrap}.' },
    ],
  },
  {
    name: 'apply_coupon',
    domain: 'ecommerce',
    description: 'Apply a coupon code to an order.',
    params: [
      p('order_id', 'Order id.', ORDER_ID),
      p('code', 'Coupon code.', {
        kind: 'pattern',
        regex: '[A-Z]{4}\\d{2}',
        generate: (rng) => `${rng.pick(['SAVE', 'DEAL', 'GIFT', 'SALE', 'FREE'])}${digits(rng, 2)}`,
      }),
    ],
    templates: [{ text: 'Apply coupon {code} to order {order_id}.' }],
  },
  // Home
  {
    name: 'set_thermostat',
    domain: 'home',
    description: 'Set a room thermostat.',
    params: [
      p('room', 'Room.', ROOM),
      p('temperature', 'Target temperature in degrees Celsius.', { kind: 'number', min: 16, max: 28, decimals: 1 }),
      p('mode', 'Mode.', { kind: 'enum', values: ['heat', 'cool', 'auto'] }, false),
    ],
    templates: [
      { text: 'Set the {room} thermostat to {temperature} degrees.' },
      { text: 'Set the {room} thermostat to {temperature} degrees in {mode} mode.' },
    ],
  },
  {
    name: 'control_lights',
    domain: 'home',
    description: 'Switch the lights in a room on or off.',
    params: [
      p('room', 'Room.', ROOM),
      p('on', 'True to switch on, false to switch off.', { kind: 'boolean', phrases: ['on', 'off'] }),
      p('brightness', 'Brightness in percent.', { kind: 'integer', min: 5, max: 100 }, false),
    ],
    templates: [
      { text: 'Turn {on} the lights in the {room}.' },
      { text: 'Switch {on} the {room} lights at {brightness} percent brightness.' },
    ],
  },
  {
    name: 'update_user_settings',
    domain: 'home',
    description: 'Update the user’s app settings.',
    params: [
      p('settings', 'Settings to apply.', {
        kind: 'object',
        fields: {
          language: LANGUAGE,
          timezone: { kind: 'vocab', vocab: 'timezone' },
          dark_mode: { kind: 'boolean', phrases: ['dark mode on', 'dark mode off'] },
        },
      }),
    ],
    templates: [
      {
        text: 'Update my settings to language {settings.language} with timezone {settings.timezone} and {settings.dark_mode}.',
      },
    ],
  },
  // Restaurants
  {
    name: 'find_restaurants',
    domain: 'dining',
    description: 'Find restaurants in a city.',
    produces: 'restaurant',
    params: [
      p('city', 'The city name.', CITY),
      p('cuisine', 'Cuisine.', {
        kind: 'enum',
        values: ['italian', 'japanese', 'mexican', 'indian', 'thai', 'french', 'vegan'],
      }),
      p('price_level', 'Price level from 1 (cheap) to 4.', { kind: 'integer', min: 1, max: 4 }, false),
    ],
    templates: [
      { text: 'Find {cuisine} restaurants in {city}.' },
      { text: 'Find {cuisine} restaurants in {city} at price level {price_level}.' },
    ],
  },
  {
    name: 'make_reservation',
    domain: 'dining',
    description: 'Reserve a table at a restaurant found by find_restaurants.',
    params: [
      p('restaurant_id', 'The restaurant id returned by find_restaurants.', RESTAURANT_ID),
      p('party_size', 'Number of people.', { kind: 'integer', min: 1, max: 12 }),
      p('date', 'Date (YYYY-MM-DD).', DATE),
      p('time', 'Time (HH:MM).', TIME),
    ],
    templates: [
      { text: 'Reserve a table at restaurant {restaurant_id} for {party_size} people on {date} at {time}.' },
      {
        text: 'Reserve a table at the first restaurant for {party_size} people on {date} at {time}.',
        refs: ['restaurant_id'],
      },
    ],
  },
  // Media
  {
    name: 'play_music',
    domain: 'media',
    description: 'Play music by an artist.',
    params: [
      p('artist', 'Artist name.', { kind: 'vocab', vocab: 'artist' }),
      p('song', 'Song title; any song when omitted.', { kind: 'quoted', vocab: 'song' }, false),
      p('shuffle', 'Whether to shuffle.', { kind: 'boolean', phrases: ['on shuffle', 'in order'] }, false),
    ],
    templates: [{ text: 'Play "{song}" by {artist}.' }, { text: 'Play songs by {artist} {shuffle}.' }],
  },
  {
    name: 'get_news',
    domain: 'media',
    description: 'Get recent news headlines on a topic.',
    params: [
      p('topic', 'Topic.', { kind: 'vocab', vocab: 'newsTopic' }),
      p('limit', 'Number of headlines.', { kind: 'integer', min: 1, max: 20 }, false),
      p('language', 'Headline language.', { kind: 'enum', values: ['English', 'French', 'German', 'Spanish'] }, false),
    ],
    templates: [
      { text: 'Get the latest news about {topic}.' },
      { text: 'Show me {limit} headlines about {topic} in {language}.' },
    ],
  },
];

/** Requests no tool serves (chit-chat); with them a sample's right answer is text, whatever tools are offered. */
export const CHITCHAT_TEMPLATES: readonly { text: string; slots: Readonly<Record<string, ValueSpec>> }[] = [
  { text: 'Tell me a joke about {topic}.', slots: { topic: { kind: 'vocab', vocab: 'jokeTopic' } } },
  { text: 'Write a short poem about {topic}.', slots: { topic: { kind: 'vocab', vocab: 'jokeTopic' } } },
  { text: 'What is the meaning of life?', slots: {} },
  { text: 'Who painted the Mona Lisa?', slots: {} },
  { text: 'Can you recommend a good book about {topic}?', slots: { topic: { kind: 'vocab', vocab: 'newsTopic' } } },
];
