// Conversations follow Discord's own structure (llmcord's idea): a thread is one conversation, and outside threads
// a reply chain is one, keyed by the message at its root. Walking a chain costs REST calls, so resolved roots are
// kept in a bounded cache, counted in the metrics like every other cache.
import type { Message } from 'discord.js';
import { metrics, recordCacheLookup } from '../../metrics.js';

const MAX_HOPS = 25;
const ENTRY_BYTES = 64; // two snowflakes and the map's overhead, roughly

export class ReplyChains {
  private readonly roots = new Map<string, string>(); // message id -> root message id (or interaction id)
  private readonly latest = new Map<string, string>(); // "channel:user" -> thread key of the user's latest conversation

  constructor(private readonly maxEntries = 10_000) {}

  /** The key of the chain `message` belongs to: the root message id, or the interaction id for a slash-command reply. */
  async rootOf(message: Message): Promise<string> {
    const path: string[] = [];
    let current = message;
    for (let hop = 0; hop < MAX_HOPS; hop++) {
      const cached = this.roots.get(current.id);
      recordCacheLookup(metrics, 'messages', cached !== undefined, this.roots.size * ENTRY_BYTES);
      if (cached) return this.remember(path, cached);
      path.push(current.id);
      // A slash command's reply has no reference; its conversation is keyed by the interaction.
      const interactionId = current.interactionMetadata?.id;
      if (interactionId) return this.remember(path, interactionId);
      const parentId = current.reference?.messageId;
      if (!parentId || current.reference?.channelId !== current.channelId) return this.remember(path, current.id);
      try {
        current = await current.fetchReference();
      } catch {
        return this.remember(path, parentId); // a deleted parent still names the chain
      }
    }
    return this.remember(path, current.id);
  }

  /** Records that replies to `messageId` continue the conversation `thread`. */
  link(messageId: string, thread: string): void {
    this.bounded(this.roots).set(messageId, thread);
  }

  /** Notes the thread key of a user's latest conversation in a channel (for /describe and DMs without a reply). */
  setLatest(channelId: string, userId: string, thread: string): void {
    this.bounded(this.latest).set(`${channelId}:${userId}`, thread);
  }

  latestOf(channelId: string, userId: string): string | undefined {
    return this.latest.get(`${channelId}:${userId}`);
  }

  private remember(path: string[], root: string): string {
    for (const id of path) this.bounded(this.roots).set(id, root);
    return root;
  }

  // Oldest entries go first: Map iterates in insertion order.
  private bounded(map: Map<string, string>): Map<string, string> {
    while (map.size >= this.maxEntries) map.delete(map.keys().next().value!);
    return map;
  }
}
