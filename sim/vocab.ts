/**
 * The sim world's vocabularies: the values slot fillers draw from. Items never contain ", ", " and " or sentence
 * punctuation followed by a space, because the world's request grammar splits on those.
 */
export const VOCAB = {
  city: [
    'Paris', 'Tokyo', 'Berlin', 'Lisbon', 'Toronto', 'Sydney', 'Nairobi', 'Seoul', 'Madrid', 'Oslo', 'Chicago', 'Denver',
    'Mumbai', 'Cairo', 'Lima', 'Dublin', 'Vienna', 'Prague', 'Austin', 'Boston', 'Hanoi', 'Zurich', 'Santiago', 'Helsinki',
    'New York', 'San Francisco', 'Buenos Aires', 'Cape Town', 'Mexico City', 'Rio de Janeiro',
  ],
  airport: ['JFK', 'LAX', 'SFO', 'ORD', 'LHR', 'CDG', 'FRA', 'AMS', 'MAD', 'FCO', 'NRT', 'HND', 'SYD', 'YYZ', 'DXB', 'SIN', 'ICN', 'BOS', 'SEA', 'DEN'],
  airline: ['AA', 'BA', 'LH', 'AF', 'DL', 'UA', 'KL', 'QF', 'NH', 'EK'],
  timezone: ['UTC', 'Europe/Paris', 'Europe/London', 'America/New_York', 'America/Chicago', 'America/Los_Angeles', 'Asia/Tokyo', 'Asia/Singapore', 'Australia/Sydney', 'Africa/Nairobi'],
  ticker: ['AAPL', 'MSFT', 'GOOGL', 'AMZN', 'NVDA', 'TSLA', 'META', 'NFLX', 'IBM', 'ORCL', 'INTC', 'AMD', 'SAP', 'SONY', 'ADBE'],
  currency: ['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD', 'SEK', 'NOK', 'INR', 'BRL', 'KRW'],
  account: ['checking', 'savings', 'brokerage', 'travel fund', 'emergency fund', 'business'],
  budgetName: ['Household', 'Vacation', 'Groceries Plan', 'Q3 Marketing', 'Home Office', 'Wedding', 'Car Fund', 'Holiday Gifts', 'Team Lunches'],
  budgetCategory: ['groceries', 'rent', 'utilities', 'dining', 'transport', 'entertainment', 'travel', 'insurance', 'subscriptions'],
  email: [
    'alice@example.com', 'bob@example.com', 'carol@acme.io', 'dave@acme.io', 'erin@contoso.com', 'frank@contoso.com',
    'grace@initech.net', 'heidi@initech.net', 'ivan@globex.org', 'judy@globex.org', 'mallory@umbrella.dev', 'oscar@umbrella.dev',
  ],
  eventTitle: ['Quarterly review', 'Design sync', 'Dentist appointment', 'Team retro', 'Budget planning', 'Coffee with Sam', 'Product demo', 'Yoga class', 'Parent-teacher meeting', 'Launch prep'],
  reminder: ['call the plumber', 'water the plants', 'submit the expense report', 'pick up the dry cleaning', 'renew the passport', 'book the vet', 'pay the electricity bill', 'send the invoice'],
  subject: ['Project update', 'Invoice attached', 'Lunch on Friday', 'Contract draft', 'Weekly report', 'Travel plans', 'Offer letter', 'Meeting notes'],
  body: [
    'The draft is ready for your review', 'Please find the invoice attached', 'Can we move our call to Thursday', 'The shipment left the warehouse today',
    'Thanks for the quick turnaround', 'Here are the notes from this morning', 'Let me know if the numbers look right', 'The client approved the proposal',
  ],
  shortMessage: ['Running ten minutes late', 'Meeting moved to 3 pm', 'Dinner is at 7 tonight', 'The build is green again', 'Call me when you land', 'Doors open at noon', 'Lunch is on me today', 'The report is uploaded'],
  channel: ['#general', '#engineering', '#random', '#sales', '#support', '#design', '#announcements', '#ops'],
  phrase: ['Where is the train station', 'Good morning everyone', 'The meeting starts at nine', 'Thank you for your help', 'How much does this cost', 'I would like a coffee', 'See you tomorrow'],
  language: ['French', 'German', 'Spanish', 'Italian', 'Japanese', 'Portuguese'],
  product: ['wireless earbuds', 'running shoes', 'standing desk', 'espresso machine', 'mechanical keyboard', 'yoga mat', 'air purifier', 'hiking backpack', 'noise cancelling headphones', 'smart watch', 'desk lamp', 'cast iron skillet'],
  artist: ['Nina Simone', 'Miles Davis', 'Daft Punk', 'Adele', 'Radiohead', 'Bob Marley', 'Taylor Swift', 'Fela Kuti', 'Billie Eilish', 'Ludovico Einaudi'],
  song: ['Feeling Good', 'So What', 'Get Lucky', 'Hello', 'Karma Police', 'Redemption Song', 'Shake It Off', 'Water No Get Enemy', 'Bad Guy', 'Nuvole Bianche'],
  newsTopic: ['renewable energy', 'space exploration', 'electric vehicles', 'artificial intelligence', 'the stock market', 'climate policy', 'public health', 'cybersecurity', 'the housing market', 'football'],
  jokeTopic: ['penguins', 'pirates', 'accountants', 'cats', 'coffee', 'robots', 'dinosaurs', 'mondays'],
  pollutant: ['ozone', 'nitrogen dioxide', 'sulfur dioxide', 'carbon monoxide', 'PM10', 'PM25'],
  amenity: ['free wifi', 'parking', 'pool', 'gym', 'breakfast', 'spa', 'airport shuttle'],
} as const satisfies Record<string, readonly string[]>;

export type VocabName = keyof typeof VOCAB;

/** Sentences that carry no request (greetings, personas, thanks): the world's parser skips them. */
export const FILLER_SENTENCES = [
  'Hi there!', 'Hello!', 'Good morning!', 'Thanks in advance.', 'Thanks!', 'Please help me with this.', 'Quick question.',
  "I'm planning my week.", "I'm a travel agent.", 'I work in finance.', "I'm organizing a team offsite.", 'I run a small online shop.',
  "I'm new to this app.", "I'm a software engineer.", 'I manage a small team.', 'Appreciate it!',
] as const;

/** Openers and closers the generator adds per scenario focus (all of them are filler sentences). */
export const PERSONA_FILLERS = ["I'm a travel agent.", 'I work in finance.', "I'm organizing a team offsite.", 'I run a small online shop.', "I'm new to this app.", "I'm a software engineer.", 'I manage a small team.'] as const;
export const GREETING_FILLERS = ['Hi there!', 'Hello!', 'Good morning!', 'Quick question.', "I'm planning my week."] as const;
export const CLOSING_FILLERS = ['Thanks in advance.', 'Thanks!', 'Please help me with this.', 'Appreciate it!'] as const;

/** Words that join a second or third request onto the first ("Also, …"); stripped before a sentence is parsed. */
export const CONNECTORS = ['Also, ', 'And ', 'Additionally, ', 'Plus, ', 'Then '] as const;

/** The assistant's answer when no offered tool fits: the text label of an irrelevance sample. */
export const NO_TOOL_ANSWERS = [
  "I'm sorry, but none of the available tools can help with that request.",
  "I can't help with that using the tools I have access to.",
  'None of my available functions can do that, so I cannot make a call for this request.',
] as const;
