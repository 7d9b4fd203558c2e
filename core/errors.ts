/**
 * The failure vocabulary: the `type` of every ApplicationFailure looptool throws, and the strings that activity retry
 * policies list as non-retryable. A const object (the SDK's enum idiom) so the values are plain strings in history.
 */
export const ErrorType = {
  /** Configuration or input that cannot work however often it is retried (bad URL, unknown model, invalid config). */
  ConfigInvalid: 'ConfigInvalid',
  /** A model server rejected the request itself (4xx other than 408/409/429): fix the request or the server, not retry. */
  ModelRequestRejected: 'ModelRequestRejected',
  /** A model server is overloaded or briefly unavailable (429, 5xx, 408, 409): retry, after its retry-after if given. */
  ModelServerUnavailable: 'ModelServerUnavailable',
  /** The connection to a model server failed or timed out: retry. */
  ModelConnectionFailed: 'ModelConnectionFailed',
  /** A model's output failed its schema: retryable within the stage's attempt cap, then recorded as data. */
  ModelOutputInvalid: 'ModelOutputInvalid',
  /** A dataset version or sample that the workflow refers to is missing. */
  DataNotFound: 'DataNotFound',
  /** A training backend's API is unreachable or overloaded (5xx, 429, connection refused): retry. */
  TrainerUnavailable: 'TrainerUnavailable',
  /** A training backend refused the request itself (4xx other than 408/409/429): fix the config, not retry. */
  TrainerRequestRejected: 'TrainerRequestRejected',
  /** A training job failed on the backend. */
  TrainingJobFailed: 'TrainingJobFailed',
  /** PostgreSQL does not answer or dropped the connection (down, restarting, failing over, out of connections): wait. */
  DatabaseUnavailable: 'DatabaseUnavailable',
} as const;
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

/** The types no retry can fix; activity proxies list them as `nonRetryableErrorTypes`. */
export const NON_RETRYABLE_ERROR_TYPES: ErrorType[] = [
  ErrorType.ConfigInvalid,
  ErrorType.ModelRequestRejected,
  ErrorType.TrainerRequestRejected,
  ErrorType.DataNotFound,
];
