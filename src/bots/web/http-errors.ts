// How catalogue errors look over HTTP: a status per code and one JSON body shape, { error: { code, message } }.
// The message is the catalogue's user message, never a stack trace.
import { toOmgError, type ErrorCode, type OmgError } from '../../errors.js';

const statusByCode: Partial<Record<ErrorCode, number>> = {
  OMG_ERR_IMAGE_TOO_LARGE: 413,
  OMG_ERR_IMAGE_TOO_MANY_PIXELS: 413,
  OMG_ERR_IMAGE_TYPE: 415,
  OMG_ERR_IMAGE_DECODE: 400,
  OMG_ERR_NO_IMAGE: 409,
  OMG_ERR_IMAGE_EXPIRED: 410,
  OMG_ERR_PROMPT_OUTSIDE_IMAGE: 400,
  OMG_ERR_PROMPT_MISMATCH: 400,
  OMG_ERR_BAD_REQUEST: 400,
  OMG_ERR_UNKNOWN_REGION: 404,
  OMG_ERR_CANCELLED: 499,
  OMG_ERR_TIMEOUT: 504,
  OMG_ERR_BUSY: 503,
  OMG_ERR_RATE_LIMITED: 429,
  OMG_ERR_FORBIDDEN: 403,
  OMG_ERR_BUNDLE_INVALID: 503,
  OMG_ERR_BUNDLE_LOAD: 503,
  OMG_ERR_PROVIDER: 503,
};

export interface ErrorBody {
  error: { code: string; message: string };
}

export function httpStatus(err: OmgError): number {
  return statusByCode[err.code] ?? 500;
}

export function errorBody(err: OmgError): ErrorBody {
  return { error: { code: err.code, message: err.userMessage } };
}

/** Any thrown value as a status and a safe body (unknown failures become OMG_ERR_INTERNAL). */
export function toHttpError(err: unknown): { status: number; body: ErrorBody; error: OmgError } {
  const error = toOmgError(err);
  return { status: httpStatus(error), body: errorBody(error), error };
}
