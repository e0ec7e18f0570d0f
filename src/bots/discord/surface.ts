// Where a turn's reply appears. A mention or a thread message is answered with channel messages (a reply to the
// user's message, so the reply chain leads back to the conversation); a slash command or button with its
// interaction response. The turn runner only sees this interface.
import type {
  ActionRowBuilder, AttachmentPayload, ButtonBuilder, ButtonInteraction, ChatInputCommandInteraction, Message, SendableChannels,
} from 'discord.js';

export type Row = ActionRowBuilder<ButtonBuilder>;

export interface Surface {
  /** Shows a "working" indicator where the platform has one. */
  typing(): Promise<void>;
  /** Creates the progress message on the first call and edits it after that. */
  progress(content: string, components: Row[]): Promise<void>;
  /** The answer: the overlay goes with the first part, the buttons under the last. Returns the posted messages. */
  final(parts: string[], files: AttachmentPayload[], components: Row[]): Promise<Message[]>;
  /** A user-facing failure in place of the progress message. */
  error(text: string): Promise<void>;
}

/** Replies in `channel` (the user's channel, or the thread started from the user's message). */
export class MessageSurface implements Surface {
  private placeholder: Message | null = null;

  constructor(private readonly trigger: Message, private readonly channel: SendableChannels) {}

  async typing(): Promise<void> {
    await this.channel.sendTyping();
  }

  async progress(content: string, components: Row[]): Promise<void> {
    if (this.placeholder) await this.placeholder.edit({ content, components });
    else this.placeholder = await this.channel.send({ content, components, ...this.reference() });
  }

  async final(parts: string[], files: AttachmentPayload[], components: Row[]): Promise<Message[]> {
    const posted: Message[] = [];
    for (const [i, content] of parts.entries()) {
      const payload = { content, files: i === 0 ? files : [], components: i === parts.length - 1 ? components : [] };
      if (i === 0 && this.placeholder) posted.push(await this.placeholder.edit({ ...payload, attachments: [] }));
      else posted.push(await this.channel.send({ ...payload, ...this.reference() }));
    }
    return posted;
  }

  async error(text: string): Promise<void> {
    if (this.placeholder) await this.placeholder.edit({ content: text, components: [] });
    else await this.channel.send({ content: text, ...this.reference() });
  }

  // In the user's own channel the reply points at the trigger, which keeps the reply chain intact; in a thread
  // the thread itself is the conversation.
  private reference() {
    return this.channel.id === this.trigger.channelId
      ? { reply: { messageReference: this.trigger.id, failIfNotExists: false }, allowedMentions: { repliedUser: false } }
      : {};
  }
}

/** Replies through an interaction that has already been deferred. */
export class InteractionSurface implements Surface {
  constructor(private readonly interaction: ChatInputCommandInteraction | ButtonInteraction) {}

  async typing(): Promise<void> {
    // A deferred interaction already shows "is thinking…".
  }

  async progress(content: string, components: Row[]): Promise<void> {
    await this.interaction.editReply({ content, components });
  }

  async final(parts: string[], files: AttachmentPayload[], components: Row[]): Promise<Message[]> {
    const posted: Message[] = [];
    for (const [i, content] of parts.entries()) {
      const payload = { content, files: i === 0 ? files : [], components: i === parts.length - 1 ? components : [] };
      posted.push(i === 0 ? await this.interaction.editReply(payload) : await this.interaction.followUp(payload));
    }
    return posted;
  }

  async error(text: string): Promise<void> {
    await this.interaction.editReply({ content: text, components: [] });
  }
}
