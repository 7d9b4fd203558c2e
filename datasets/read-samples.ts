import { bfclAnswerFromRecord, bfclQuestionFromRecord, bfclToSample } from '../core/formats/bfcl.js';
import { loopToolToSample } from '../core/formats/looptool.js';
import { openAiChatToSamples, type SplitMode } from '../core/formats/openai-chat.js';
import { locate, type Converted } from '../core/formats/rejection.js';
import { shareGptToSamples } from '../core/formats/sharegpt.js';
import type { JsonValue } from '../core/json.js';
import type { Sample } from '../core/schemas/sample.js';
import { readRecords, type ReadItem, type RejectedItem } from './read-records.js';

/** Input formats: OpenAI chat (also TRL, whose arguments are objects), ShareGPT, LoopTool-23k, BFCL. */
export const SAMPLE_FORMATS = ['openai', 'trl', 'sharegpt', 'looptool', 'bfcl'] as const;
export type SampleFormat = (typeof SAMPLE_FORMATS)[number];

/** A sample and the line it came from (one line can hold several samples with `split: 'each'`). */
export interface SampleItem {
  kind: 'sample';
  file: string;
  line: number;
  sample: Sample;
}

export type SampleReadItem = SampleItem | RejectedItem;

export interface ReadSamplesOptions {
  file: string;
  format: SampleFormat;
  /** Which assistant turns become samples in chat formats. Defaults to `last`. */
  split?: SplitMode;
  /** BFCL only: the possible-answer file, read in step with the questions (same order, as BFCL ships them). */
  answersFile?: string;
  maxLineChars?: number;
}

function convert(format: Exclude<SampleFormat, 'bfcl'>, record: JsonValue, split: SplitMode): Converted<Sample[]> {
  switch (format) {
    case 'openai':
    case 'trl':
      return openAiChatToSamples(record, { split });
    case 'sharegpt':
      return shareGptToSamples(record, { split });
    case 'looptool': {
      const sample = loopToolToSample(record);
      return sample.ok ? { ok: true, value: [sample.value] } : sample;
    }
  }
}

/**
 * Streams samples out of a data file, record by record: memory stays flat, and every record that cannot be read or
 * converted comes back as a rejection with file, line and field, while the rest keep coming. For BFCL the question
 * and possible-answer files are read in lockstep; an id mismatch is a rejection at the question's line.
 */
export async function* readSamples(options: ReadSamplesOptions): AsyncGenerator<SampleReadItem> {
  const split = options.split ?? 'last';
  const readOptions = options.maxLineChars === undefined ? {} : { maxLineChars: options.maxLineChars };
  if (options.format !== 'bfcl') {
    const format = options.format;
    for await (const item of readRecords(options.file, readOptions)) {
      if (item.kind === 'rejection') {
        yield item;
        continue;
      }
      const samples = convert(format, item.value, split);
      if (!samples.ok) yield { kind: 'rejection', rejection: locate(samples.rejection, item) };
      else for (const sample of samples.value) yield { kind: 'sample', file: item.file, line: item.line, sample };
    }
    return;
  }
  const answers: AsyncIterator<ReadItem> | undefined = options.answersFile
    ? readRecords(options.answersFile, readOptions)
    : undefined;
  for await (const item of readRecords(options.file, readOptions)) {
    const next = answers ? await answers.next() : undefined;
    if (item.kind === 'rejection') {
      yield item;
      continue;
    }
    const question = bfclQuestionFromRecord(item.value);
    if (!question.ok) {
      yield { kind: 'rejection', rejection: locate(question.rejection, item) };
      continue;
    }
    let answer;
    if (next) {
      if (next.done) {
        yield {
          kind: 'rejection',
          rejection: {
            file: item.file,
            line: item.line,
            field: 'id',
            reason: `${options.answersFile} has no answer for ${question.value.id}`,
          },
        };
        continue;
      }
      if (next.value.kind === 'rejection') {
        yield next.value;
        continue;
      }
      const parsed = bfclAnswerFromRecord(next.value.value);
      if (!parsed.ok) {
        yield { kind: 'rejection', rejection: locate(parsed.rejection, next.value) };
        continue;
      }
      answer = parsed.value;
    }
    const sample = bfclToSample(answer ? { question: question.value, answer } : { question: question.value });
    if (!sample.ok) yield { kind: 'rejection', rejection: locate(sample.rejection, item) };
    else yield { kind: 'sample', file: item.file, line: item.line, sample: sample.value };
  }
}
