// Exit codes of `omg-llava-bot`, so scripts can tell a typo from a bad image from a broken model bundle.
import type { ErrorCode } from '../../errors.js';

export const exitCodes = { ok: 0, internal: 1, usage: 2, badInput: 3, model: 4 } as const;

const modelCodes: ErrorCode[] = ['OMG_ERR_BUNDLE_INVALID', 'OMG_ERR_BUNDLE_LOAD', 'OMG_ERR_PROVIDER'];
const inputCodes: ErrorCode[] = [
  'OMG_ERR_IMAGE_DECODE', 'OMG_ERR_IMAGE_TOO_LARGE', 'OMG_ERR_IMAGE_TOO_MANY_PIXELS', 'OMG_ERR_IMAGE_TYPE', 'OMG_ERR_NO_IMAGE',
  'OMG_ERR_PROMPT_OUTSIDE_IMAGE', 'OMG_ERR_PROMPT_MISMATCH', 'OMG_ERR_BAD_REQUEST', 'OMG_ERR_UNKNOWN_REGION',
];

export function exitCodeFor(code: ErrorCode): number {
  if (modelCodes.includes(code)) return exitCodes.model;
  if (inputCodes.includes(code)) return exitCodes.badInput;
  return exitCodes.internal;
}
