// Fetching a user's file from a chat platform. Shared by the Discord and Slack adapters: only hosts the platform
// serves files from, no redirects (a redirect could lead anywhere), and never more bytes than the image cap.
import { omgError } from '../errors.js';

export interface DownloadOptions {
  /** Allowed `host` values (hostname, or hostname:port), e.g. "cdn.discordapp.com". */
  allowedHosts: readonly string[];
  /** Reading stops with OMG_ERR_IMAGE_TOO_LARGE past this many bytes. */
  maxBytes: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export interface Downloaded { bytes: Uint8Array; contentType: string }

/** Downloads `url`; throws OMG_ERR_DOWNLOAD for a refused host, a redirect or a failed request. */
export async function downloadFile(url: string, opts: DownloadOptions): Promise<Downloaded> {
  const parsed = new URL(url);
  const loopback = parsed.hostname === '127.0.0.1' || parsed.hostname === 'localhost';
  // Plain http only for loopback hosts that are explicitly allowed (the fake platforms of the tests).
  if (!opts.allowedHosts.includes(parsed.host) || (parsed.protocol !== 'https:' && !(loopback && parsed.protocol === 'http:'))) {
    throw omgError('OMG_ERR_DOWNLOAD', { reason: 'host not allowed', host: parsed.host });
  }
  let response: Response;
  try {
    response = await fetch(parsed, { redirect: 'error', headers: opts.headers, signal: opts.signal });
  } catch (err) {
    throw omgError('OMG_ERR_DOWNLOAD', { reason: 'request failed', host: parsed.host }, err);
  }
  if (!response.ok || !response.body) throw omgError('OMG_ERR_DOWNLOAD', { reason: `status ${response.status}`, host: parsed.host });
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > opts.maxBytes) {
    await response.body.cancel();
    throw omgError('OMG_ERR_IMAGE_TOO_LARGE', { bytes: declared, limit: opts.maxBytes });
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += chunk.length;
    if (total > opts.maxBytes) throw omgError('OMG_ERR_IMAGE_TOO_LARGE', { bytes: total, limit: opts.maxBytes });
    chunks.push(chunk);
  }
  return { bytes: Buffer.concat(chunks), contentType: response.headers.get('content-type') ?? '' };
}
