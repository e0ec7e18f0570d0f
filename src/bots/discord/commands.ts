// Slash commands: their definitions (registered at start-up) and the sentence each one stands for, so commands and
// mentions behave the same: /segment dog == "@bot segment dog".
import { SlashCommandBuilder, type Attachment, type ChatInputCommandInteraction, type SlashCommandAttachmentOption } from 'discord.js';
import { commandNames, commandSentence, type CommandName } from '../../conversation/command-text.js';
import { omgError } from '../../errors.js';

const image = (required: boolean) => (o: SlashCommandAttachmentOption) =>
  o.setName('image').setDescription('The image to ask about').setRequired(required);

export const commandDefinitions = [
  new SlashCommandBuilder().setName('ask').setDescription('Ask a question about an image')
    .addAttachmentOption(image(true))
    .addStringOption((o) => o.setName('question').setDescription('Your question').setRequired(true).setMaxLength(1000)),
  new SlashCommandBuilder().setName('segment').setDescription('Segment something in an image')
    .addAttachmentOption(image(true))
    .addStringOption((o) => o.setName('target').setDescription('What to segment, e.g. "the red car"').setRequired(true).setMaxLength(200)),
  new SlashCommandBuilder().setName('caption').setDescription('Describe an image')
    .addAttachmentOption(image(true))
    .addBooleanOption((o) => o.setName('grounded').setDescription('Mark each described object with its mask')),
  new SlashCommandBuilder().setName('regions').setDescription('Segment everything, numbered')
    .addAttachmentOption(image(true)),
  new SlashCommandBuilder().setName('describe').setDescription('Describe a region of your latest image (or of a new one)')
    .addStringOption((o) => o.setName('region').setDescription('#n, a point x,y or a box x1,y1,x2,y2').setRequired(true).setMaxLength(100)
      .setAutocomplete(true))
    .addAttachmentOption(image(false)),
].map((builder) => builder.toJSON());

export interface CommandRequest { text: string; attachment: Attachment | null }

/** The sentence a command stands for, and its image option. */
export function commandRequest(interaction: ChatInputCommandInteraction): CommandRequest {
  const o = interaction.options;
  const name = interaction.commandName as CommandName;
  if (!commandNames.includes(name)) throw omgError('OMG_ERR_BAD_REQUEST', { correction: `Unknown command /${name}.` });
  const argument = o.getString('question') ?? o.getString('target') ?? o.getString('region') ?? '';
  return { text: commandSentence(name, argument, { grounded: o.getBoolean('grounded') ?? false }), attachment: o.getAttachment('image') };
}
