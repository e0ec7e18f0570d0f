// Messages: a mention with an image starts a conversation (in a new thread where possible), a reply to the bot or
// a message in the bot's thread continues one, and DMs need no mention. Steps: trigger → allow-list → once →
// rate limit → which image (caps checked first) → where the conversation lives → run the turn.
import { ChannelType, type Attachment, type Message, type SendableChannels } from 'discord.js';
import { isOmgError, omgError, toOmgError } from '../../errors.js';
import { fetchImage, pickImage, type ImageInput } from './attachments.js';
import { isAllowed } from './access.js';
import type { BotContext } from './context.js';
import { MessageSurface } from './surface.js';
import { runTurn } from './turn.js';

const HISTORY_LOOKBACK = 50; // messages searched for an earlier image in a thread
const DEFAULT_QUESTION = 'describe the image';

export async function handleMessage(ctx: BotContext, message: Message): Promise<void> {
  if (!isTrigger(ctx, message)) return;
  if (!isAllowed(ctx.config, placeOf(message))) return; // not enabled here: stay silent, as if not invited
  if (!ctx.firstTime(message.id)) return;
  try {
    ctx.limiter.take(`discord:${message.author.id}`);
    const text = stripMention(message.content, ctx.client.user.id) || DEFAULT_QUESTION;
    const image = await findImage(ctx, message);
    const { channel, thread, surfaceChannel } = await locate(ctx, message, image !== undefined);
    ctx.chains.setLatest(message.channelId, message.author.id, thread);
    ctx.running.set(message.id, message.author.id);
    const posted = await runTurn(ctx, { eventId: message.id, userId: message.author.id, channel, thread, text, ...(image ? { image } : {}) },
      new MessageSurface(message, surfaceChannel));
    for (const reply of posted) ctx.chains.link(reply.id, thread);
  } catch (err) {
    // Failures before the turn starts (rate limit, attachment checks, download) are answered in place.
    const omg = toOmgError(err);
    if (!isOmgError(err)) ctx.log.error({ err, messageId: message.id }, 'discord: message failed');
    await message.reply({ content: `⚠️ ${omg.userMessage}`, allowedMentions: { repliedUser: false } })
      .catch((replyErr: unknown) => ctx.log.warn({ err: replyErr }, 'discord: could not post the error reply'));
  } finally {
    ctx.running.delete(message.id);
  }
}

function isTrigger(ctx: BotContext, message: Message): boolean {
  if (message.author.bot || message.system) return false;
  const botId = ctx.client.user.id;
  if (!message.inGuild()) return true;
  const inBotThread = message.channel.isThread() && message.channel.ownerId === botId;
  return inBotThread || message.mentions.users.has(botId) || message.mentions.repliedUser?.id === botId;
}

function placeOf(message: Message) {
  const channel = message.channel;
  const parentId = channel.isThread() ? channel.parentId : null;
  return {
    guildId: message.guildId,
    channelIds: parentId ? [message.channelId, parentId] : [message.channelId],
    roleIds: message.member ? [...message.member.roles.cache.keys()] : [],
  };
}

function stripMention(content: string, botId: string): string {
  return content.replace(new RegExp(`<@!?${botId}>`, 'g'), '').trim();
}

// A thread is its own conversation. A new mention in a text channel opens a thread from the user's message (the
// thread takes the message's id); elsewhere, and where threads are not allowed, the reply chain is the conversation.
async function locate(ctx: BotContext, message: Message, hasImage: boolean): Promise<{ channel: string; thread: string; surfaceChannel: SendableChannels }> {
  const source = message.channel;
  if (source.isThread()) return { channel: source.parentId ?? source.id, thread: source.id, surfaceChannel: source };
  const continuing = message.reference !== null && message.mentions.repliedUser?.id === ctx.client.user.id;
  if (!continuing && source.type === ChannelType.GuildText) {
    if (!hasImage) throw omgError('OMG_ERR_NO_IMAGE'); // a new conversation needs one; no thread for a bare mention
    try {
      const thread = await message.startThread({ name: threadName(message.content, ctx.client.user.id) });
      return { channel: source.id, thread: thread.id, surfaceChannel: thread };
    } catch (err) {
      ctx.log.info({ err, channelId: source.id }, 'discord: could not start a thread; replying in the channel');
    }
  }
  if (!message.inGuild() && !message.reference && message.attachments.size === 0) {
    const latest = ctx.chains.latestOf(message.channelId, message.author.id);
    if (latest) return { channel: message.channelId, thread: latest, surfaceChannel: source as SendableChannels };
  }
  return { channel: message.channelId, thread: await ctx.chains.rootOf(message), surfaceChannel: source as SendableChannels };
}

function threadName(content: string, botId: string): string {
  const text = stripMention(content, botId);
  return (text || 'image question').slice(0, 90);
}

// The image: this message's, else the replied-to message's, else (for a conversation that has none yet) the
// latest one earlier in the thread. None means the conversation's stored image is used.
async function findImage(ctx: BotContext, message: Message): Promise<ImageInput | undefined> {
  const own = pickImage(message.attachments.values());
  if (own) return fetchImage(own, ctx.config);
  if (message.reference?.messageId) {
    const parent = await message.fetchReference().catch(() => null);
    const fromParent = parent && !parent.author.bot ? pickImage(parent.attachments.values()) : undefined;
    if (fromParent) return fetchImage(fromParent, ctx.config);
  }
  const source = message.channel;
  if (source.isThread() && !(await ctx.service.conversation('discord', source.parentId ?? source.id, source.id))) {
    const earlier = await source.messages.fetch({ limit: HISTORY_LOOKBACK, before: message.id });
    const withImage = [...earlier.values()].find((m) => !m.author.bot && imageOf(m));
    if (withImage) return fetchImage(imageOf(withImage)!, ctx.config);
  }
  return undefined;
}

function imageOf(message: Message): Attachment | undefined {
  return [...message.attachments.values()].find((a) => a.contentType?.startsWith('image/'));
}
