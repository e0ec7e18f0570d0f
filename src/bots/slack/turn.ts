// One turn in a Slack thread: a placeholder message, updated with chat.update at most once a second while the
// answer streams, then the Block Kit answer and the overlay uploaded into the same thread.
import type { webApi } from '@slack/bolt';
import { Pacer } from '../../conversation/pacer.js';
import { isOmgError, toOmgError } from '../../errors.js';
import { answerBlocks } from './blocks.js';
import type { SlackDeps } from './deps.js';
import type { ImageInput } from './files.js';

const EDIT_INTERVAL_MS = 1000;
const STREAM_LIMIT = 3000; // shown while streaming; the final answer is split into sections instead
const STREAMING_MARK = ' ▌';

export interface TurnInput {
  eventId: string;
  userId: string;
  channel: string;
  thread: string; // thread_ts of the conversation
  text: string;
  image?: ImageInput;
}

/** Runs one turn; failures are shown in the placeholder as ⚠️ text, never thrown (except posting the placeholder). */
export async function runTurn(deps: SlackDeps, client: webApi.WebClient, input: TurnInput): Promise<void> {
  const { service, log } = deps;
  const { channel, thread } = input;
  const placeholder = await client.chat.postMessage({ channel, thread_ts: thread, text: '⏳ working…' });
  const ts = placeholder.ts!;
  const pacer = new Pacer(EDIT_INTERVAL_MS, async (text) => { await client.chat.update({ channel, ts, text }); },
    (err) => log.warn({ err, eventId: input.eventId }, 'slack: progress update failed'));
  let streamed = '';
  try {
    const reply = await service.submit({
      platform: 'slack', ...input,
      onProgress: (ev) => {
        if (ev.type === 'queued' && ev.position > 0) pacer.update(`⏳ queued, #${ev.position}`);
        if (ev.type === 'started') streamed = '';
        if (ev.type === 'text') {
          streamed += ev.delta;
          pacer.update((streamed.length > STREAM_LIMIT ? `…${streamed.slice(-STREAM_LIMIT)}` : streamed) + STREAMING_MARK);
        }
      },
    });
    await pacer.finish(async () => {
      await client.chat.update({ channel, ts, ...answerBlocks(reply) });
      if (reply.overlay) {
        const ext = reply.overlay.mime === 'image/webp' ? 'webp' : 'png';
        await client.filesUploadV2({ channel_id: channel, thread_ts: thread, file: Buffer.from(reply.overlay.bytes),
          filename: `overlay.${ext}`, title: 'Masks', alt_text: 'The answer\'s masks over the image' });
      }
    });
  } catch (err) {
    const omg = toOmgError(err);
    if (!isOmgError(err)) log.error({ err, eventId: input.eventId }, 'slack: turn failed');
    await pacer.finish(async () => { await client.chat.update({ channel, ts, text: `⚠️ ${omg.userMessage}`, blocks: [] }); });
  }
}
