// discord.js retries a 5xx answer at once. Discord asks clients to back off, so the REST client's fetch is wrapped:
// a 5xx is retried here after 0.5 s, 1 s and 2 s (well inside discord.js's 15 s request timeout) before discord.js
// sees it. A retried message create cannot double-post: the client sends messages with an enforced nonce.
import { setTimeout as sleep } from 'node:timers/promises';
import type { RESTOptions } from 'discord.js';

type MakeRequest = RESTOptions['makeRequest'];

export const SERVER_ERROR_DELAYS_MS = [500, 1000, 2000];

export function withServerErrorBackoff(makeRequest: MakeRequest, delaysMs: readonly number[] = SERVER_ERROR_DELAYS_MS): MakeRequest {
  return async (url, init) => {
    for (const delay of delaysMs) {
      const response = await makeRequest(url, init);
      if (response.status < 500) return response;
      await response.arrayBuffer(); // release the connection
      await sleep(delay, undefined, { signal: init.signal ?? undefined });
    }
    return makeRequest(url, init);
  };
}
