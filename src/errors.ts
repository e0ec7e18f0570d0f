// The error catalogue: every failure a user can see has a stable code, a message safe to show in a channel
// (never a stack trace) and a flag that tells the queue whether retrying could help.

type Details = Record<string, unknown>;

interface CatalogueEntry {
  message: (d: Details) => string;
  retryable: boolean;
}

const mb = (bytes: unknown): string => (typeof bytes === 'number' ? `${(bytes / 1_048_576).toFixed(1)} MB` : 'the limit');
const detail = (d: Details, key: string, fallback: string): string => {
  const v = d[key];
  return typeof v === 'string' || typeof v === 'number' ? String(v) : fallback;
};

export const catalogue = {
  OMG_ERR_BUNDLE_INVALID: {
    message: (d) => `The model bundle is invalid: ${detail(d, 'reason', 'it does not match the bundle format')}.`,
    retryable: false,
  },
  OMG_ERR_BUNDLE_LOAD: {
    message: (d) => `The model could not be loaded: ${detail(d, 'reason', 'see the server log')}.`,
    retryable: false,
  },
  OMG_ERR_PROVIDER: {
    message: (d) => `The inference provider${d.provider ? ` "${detail(d, 'provider', '')}"` : ''} is not available on this machine.`,
    retryable: false,
  },
  OMG_ERR_IMAGE_DECODE: {
    message: () => 'The image could not be decoded. Please send a valid PNG, JPEG or WebP file.',
    retryable: false,
  },
  OMG_ERR_IMAGE_TOO_LARGE: {
    message: (d) => `The image is too large (${mb(d.bytes)}); the limit is ${mb(d.limit)}.`,
    retryable: false,
  },
  OMG_ERR_IMAGE_TOO_MANY_PIXELS: {
    message: (d) =>
      `The image has too many pixels (${detail(d, 'width', '?')}x${detail(d, 'height', '?')}); ` +
      `the limit is ${detail(d, 'limit', 'set by the server')} pixels. Please send a smaller image.`,
    retryable: false,
  },
  OMG_ERR_IMAGE_TYPE: {
    message: (d) => `That file is not a supported image${d.mime ? ` (${detail(d, 'mime', '')})` : ''}. Please send PNG, JPEG or WebP.`,
    retryable: false,
  },
  OMG_ERR_NO_IMAGE: {
    message: () => 'There is no image in this conversation yet. Please attach an image with your question.',
    retryable: false,
  },
  OMG_ERR_IMAGE_EXPIRED: {
    message: () => 'The image of this conversation has expired. Please send it again.',
    retryable: false,
  },
  OMG_ERR_PROMPT_OUTSIDE_IMAGE: {
    message: (d) =>
      `That point or box lies outside the image${d.width && d.height ? ` (${detail(d, 'width', '')}x${detail(d, 'height', '')} pixels)` : ''}.`,
    retryable: false,
  },
  OMG_ERR_PROMPT_MISMATCH: {
    message: (d) =>
      `The question has ${detail(d, 'placeholders', 'a different number of')} placeholders but ` +
      `${detail(d, 'prompts', 'a different number of')} visual prompts were given.`,
    retryable: false,
  },
  OMG_ERR_BAD_REQUEST: {
    message: (d) => detail(d, 'correction', 'That request could not be understood.'),
    retryable: false,
  },
  OMG_ERR_UNKNOWN_REGION: {
    message: (d) => {
      // Say which numbers exist, so "describe #9" can be corrected; a number too long to read is not repeated.
      const which = typeof d.region === 'number' && !Number.isSafeInteger(d.region) ? 'with that number' : `#${detail(d, 'region', '?')}`;
      const count = typeof d.count === 'number' ? d.count : undefined;
      const existing = count === undefined ? '' : count === 0 ? ' yet' : count === 1 ? ': it has only #1' : `: it has #1 to #${count}`;
      return `There is no region ${which} in this conversation${existing}.`;
    },
    retryable: false,
  },
  OMG_ERR_JOB_INVALID: {
    message: () => 'This request could not be processed by the worker (invalid or outdated job). Please ask again.',
    retryable: false,
  },
  OMG_ERR_CANCELLED: {
    message: () => 'The request was cancelled.',
    retryable: false,
  },
  // Not retried: a turn that ran out of time once would most likely do it again and hold the worker twice as long.
  OMG_ERR_TIMEOUT: {
    message: () => 'The request took too long and was stopped. Please try again.',
    retryable: false,
  },
  OMG_ERR_BUSY: {
    message: (d) =>
      `The bot is busy right now${typeof d.position === 'number' ? `: you would be #${d.position} in the queue` : ''}. Please try again in a minute.`,
    retryable: false,
  },
  OMG_ERR_RATE_LIMITED: {
    message: (d) =>
      `You are sending requests too quickly. ${typeof d.retryAfterS === 'number' ? `Please try again in ${d.retryAfterS} s.` : 'Please wait a moment.'}`,
    retryable: false,
  },
  OMG_ERR_FORBIDDEN: {
    message: () => 'The bot is not enabled here.',
    retryable: false,
  },
  OMG_ERR_DOWNLOAD: {
    message: () => 'The attachment could not be downloaded.',
    retryable: true,
  },
  OMG_ERR_INTERNAL: {
    message: () => 'Something went wrong on our side. Please try again.',
    retryable: true,
  },
} satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof catalogue;
export const errorCodes = Object.keys(catalogue) as ErrorCode[];

export class OmgError extends Error {
  readonly code: ErrorCode;
  readonly userMessage: string;
  readonly retryable: boolean;
  readonly details?: Details;

  constructor(code: ErrorCode, userMessage: string, retryable: boolean, details?: Details, options?: ErrorOptions) {
    super(`${code}: ${userMessage}`, options);
    this.name = 'OmgError';
    this.code = code;
    this.userMessage = userMessage;
    this.retryable = retryable;
    if (details !== undefined) this.details = details;
  }
}

/** Builds an OmgError from the catalogue; `cause` keeps the original error for the log, never for the user. */
export function omgError(code: ErrorCode, details?: Details, cause?: unknown): OmgError {
  const entry: CatalogueEntry = catalogue[code];
  return new OmgError(code, entry.message(details ?? {}), entry.retryable, details, cause === undefined ? undefined : { cause });
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(catalogue, value);
}

export function isOmgError(err: unknown): err is OmgError {
  return err instanceof OmgError;
}

/** Any thrown value as an OmgError: unknown failures become OMG_ERR_INTERNAL with the original as cause. */
export function toOmgError(err: unknown): OmgError {
  return isOmgError(err) ? err : omgError('OMG_ERR_INTERNAL', undefined, err);
}
