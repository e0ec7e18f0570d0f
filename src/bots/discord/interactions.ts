// Slash commands and button presses. Checks that can fail fast (allow-list, rate limit, attachment caps) answer
// with an ephemeral notice before anything is deferred; the turn itself runs like a mention's.
import { MessageFlags, type AutocompleteInteraction, type ButtonInteraction, type ChatInputCommandInteraction, type Interaction, type Message } from 'discord.js';
import { isOmgError, omgError, toOmgError } from '../../errors.js';
import { isAllowed } from './access.js';
import { checkAttachment, fetchImage } from './attachments.js';
import { parseButton } from './buttons.js';
import { commandRequest } from './commands.js';
import { maskFiles } from './masks.js';
import type { BotContext } from './context.js';
import { InteractionSurface } from './surface.js';
import { runTurn, type TurnInput } from './turn.js';

const MAX_CHOICES = 25; // Discord's limit for autocomplete

export async function handleInteraction(ctx: BotContext, interaction: Interaction): Promise<void> {
  if (interaction.isAutocomplete()) return suggestRegions(ctx, interaction);
  if (!interaction.isChatInputCommand() && !interaction.isButton()) return;
  if (!ctx.firstTime(interaction.id)) return;
  try {
    if (!isAllowed(ctx.config, placeOf(interaction))) throw omgError('OMG_ERR_FORBIDDEN');
    if (interaction.isChatInputCommand()) await handleCommand(ctx, interaction);
    else await handleButton(ctx, interaction);
  } catch (err) {
    const omg = toOmgError(err);
    if (!isOmgError(err)) ctx.log.error({ err, interactionId: interaction.id }, 'discord: interaction failed');
    const content = `⚠️ ${omg.userMessage}`;
    // Before deferring the notice is private; after it, it replaces the "thinking…" reply.
    const answer = interaction.deferred ? interaction.editReply({ content, components: [] }) : interaction.reply({ content, flags: MessageFlags.Ephemeral });
    await answer.catch((replyErr: unknown) => ctx.log.warn({ err: replyErr }, 'discord: could not post the error notice'));
  }
}

async function handleCommand(ctx: BotContext, interaction: ChatInputCommandInteraction): Promise<void> {
  ctx.limiter.take(`discord:${interaction.user.id}`);
  const { text, attachment } = commandRequest(interaction);
  if (attachment) checkAttachment(attachment, ctx.config);
  await interaction.deferReply();
  const image = attachment ? await fetchImage(attachment, ctx.config) : undefined;
  const channel = conversationChannel(interaction);
  // A new image starts a conversation keyed by this interaction; without one, the user's latest conversation here.
  const thread = image ? interaction.id : (ctx.chains.latestOf(interaction.channelId, interaction.user.id) ?? interaction.id);
  ctx.chains.setLatest(interaction.channelId, interaction.user.id, thread);
  await run(ctx, interaction, { eventId: interaction.id, userId: interaction.user.id, channel, thread, text, ...(image ? { image } : {}) });
}

async function handleButton(ctx: BotContext, interaction: ButtonInteraction): Promise<void> {
  const press = parseButton(interaction.customId);
  if (!press) return;
  if (press.action === 'cancel') {
    const owner = ctx.running.get(press.arg);
    if (owner && owner !== interaction.user.id) {
      throw omgError('OMG_ERR_BAD_REQUEST', { correction: 'Only the person who asked can cancel this.' });
    }
    await interaction.deferUpdate();
    await ctx.service.cancel('discord', press.arg);
    return;
  }
  ctx.limiter.take(`discord:${interaction.user.id}`);
  await interaction.deferReply();
  const { channel, thread } = await conversationOf(ctx, interaction.message);
  if (press.action === 'masks') {
    await interaction.editReply(await maskFiles(ctx.service, channel, thread, press.arg));
    return;
  }
  await run(ctx, interaction, { eventId: interaction.id, userId: interaction.user.id, channel, thread, text: 'segment everything' });
}

// /describe region: the numbered masks of the user's latest conversation in this channel, filtered by what is typed.
async function suggestRegions(ctx: BotContext, interaction: AutocompleteInteraction): Promise<void> {
  const thread = ctx.chains.latestOf(interaction.channelId, interaction.user.id);
  const channel = conversationChannel(interaction);
  const conversation = thread && isAllowed(ctx.config, placeOf(interaction)) ? await ctx.service.conversation('discord', channel, thread) : null;
  const typed = interaction.options.getFocused().toLowerCase();
  const choices = (conversation?.regions ?? [])
    .map((r) => ({ name: `#${r.n} ${r.label ?? r.phrase}`.slice(0, 100), value: `#${r.n}` }))
    .filter((c) => c.name.toLowerCase().includes(typed.replace(/^#?/, '')))
    .slice(0, MAX_CHOICES);
  await interaction.respond(choices);
}

async function run(ctx: BotContext, interaction: ChatInputCommandInteraction | ButtonInteraction, input: TurnInput): Promise<void> {
  ctx.running.set(input.eventId, input.userId);
  try {
    const posted = await runTurn(ctx, input, new InteractionSurface(interaction));
    // Replies to these messages continue this conversation (their own key would be the interaction's id).
    for (const message of posted) ctx.chains.link(message.id, input.thread);
  } finally {
    ctx.running.delete(input.eventId);
  }
}

/** The conversation a bot message belongs to: its thread, or its reply chain. */
async function conversationOf(ctx: BotContext, message: Message): Promise<{ channel: string; thread: string }> {
  const source = message.channel;
  if (source.isThread()) return { channel: source.parentId ?? source.id, thread: source.id };
  return { channel: message.channelId, thread: await ctx.chains.rootOf(message) };
}

function conversationChannel(interaction: ChatInputCommandInteraction | AutocompleteInteraction): string {
  const channel = interaction.channel;
  return channel?.isThread() ? (channel.parentId ?? channel.id) : interaction.channelId;
}

function placeOf(interaction: ChatInputCommandInteraction | ButtonInteraction | AutocompleteInteraction) {
  const channel = interaction.channel;
  const parentId = channel?.isThread() ? channel.parentId : null;
  const roles = interaction.member?.roles;
  return {
    guildId: interaction.guildId,
    channelIds: parentId ? [interaction.channelId, parentId] : [interaction.channelId],
    roleIds: Array.isArray(roles) ? roles : roles ? [...roles.cache.keys()] : [],
  };
}
