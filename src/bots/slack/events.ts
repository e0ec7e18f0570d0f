// Events: an app_mention (with a file) starts a conversation in the message's thread; later messages in that
// thread continue it without a mention; DMs need no mention. Steps: once → which conversation → rate limit →
// which image → run the turn.
import type { App, webApi } from '@slack/bolt';
import { isOmgError, toOmgError } from '../../errors.js';
import type { SlackContext } from './context.js';
import { fetchImage, pickImage, type SlackFile } from './files.js';
import { runTurn } from './turn.js';

const DEFAULT_QUESTION = 'describe the image';

interface Incoming {
  eventId: string;
  user: string;
  channel: string;
  thread: string;
  text: string;
  files?: SlackFile[];
}

// The parts of a message event this adapter reads (Bolt's union of message subtypes is wider).
interface MessageEvent {
  subtype?: string;
  bot_id?: string;
  user?: string;
  text?: string;
  ts: string;
  thread_ts?: string;
  channel: string;
  channel_type?: string;
  files?: SlackFile[];
}

export function registerEvents(app: App, ctx: SlackContext): void {
  app.event('app_mention', async ({ event, body, client, context }) => {
    if (!event.user || !ctx.firstTime(body.event_id)) return;
    await handle(ctx, client, {
      eventId: body.event_id, user: event.user, channel: event.channel, thread: event.thread_ts ?? event.ts,
      text: stripMention(event.text, context.botUserId), files: (event as { files?: SlackFile[] }).files,
    });
  });

  app.event('message', async ({ event, body, client, context }) => {
    const message = event as unknown as MessageEvent;
    if (message.bot_id || !message.user || (message.subtype && message.subtype !== 'file_share' && message.subtype !== 'thread_broadcast')) return;
    const text = message.text ?? '';
    if (context.botUserId && text.includes(`<@${context.botUserId}>`)) return; // app_mention answers it
    const dm = message.channel_type === 'im';
    if (!dm && !message.thread_ts) return; // channel chatter outside any thread
    const thread = message.thread_ts
      ?? (message.files?.length ? message.ts : ctx.latestOf(message.channel, message.user) ?? message.ts);
    // In channels only threads that already hold a conversation are followed.
    if (!dm && !(await ctx.service.conversation('slack', message.channel, thread))) return;
    if (!ctx.firstTime(body.event_id)) return;
    await handle(ctx, client, { eventId: body.event_id, user: message.user, channel: message.channel, thread, text, files: message.files });
  });
}

async function handle(ctx: SlackContext, client: webApi.WebClient, req: Incoming): Promise<void> {
  try {
    ctx.limiter.take(`slack:${req.user}`);
    const file = pickImage(req.files);
    const image = file ? await fetchImage(file, ctx.config) : undefined;
    ctx.setLatest(req.channel, req.user, req.thread);
    await runTurn(ctx, client, {
      eventId: req.eventId, userId: req.user, channel: req.channel, thread: req.thread,
      text: req.text || DEFAULT_QUESTION, ...(image ? { image } : {}),
    });
  } catch (err) {
    const omg = toOmgError(err);
    if (!isOmgError(err) || omg.code === 'OMG_ERR_DOWNLOAD') ctx.log.warn({ err, details: omg.details, eventId: req.eventId }, 'slack: event failed');
    const notice = { channel: req.channel, thread_ts: req.thread, text: `⚠️ ${omg.userMessage}` };
    // A rate-limit notice is for the sender only; other problems are answered in the thread.
    await (omg.code === 'OMG_ERR_RATE_LIMITED' ? client.chat.postEphemeral({ ...notice, user: req.user }) : client.chat.postMessage(notice))
      .catch((postErr: unknown) => ctx.log.warn({ err: postErr }, 'slack: could not post the error notice'));
  }
}

function stripMention(text: string, botUserId: string | undefined): string {
  return (botUserId ? text.replaceAll(`<@${botUserId}>`, '') : text).trim();
}
