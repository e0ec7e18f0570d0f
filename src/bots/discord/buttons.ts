// The buttons under a reply: "cancel" while a turn runs, and the obvious next steps once it is done. The custom
// id carries what the press needs, so a press works after a restart: "omg:<action>:<arg>".
import { ActionRowBuilder, ButtonBuilder, ButtonStyle } from 'discord.js';

export type ButtonAction = 'cancel' | 'masks' | 'everything';

export interface ButtonPress { action: ButtonAction; arg: string }

/** A "cancel" button for the turn started by `eventId`. */
export function cancelRow(eventId: string): ActionRowBuilder<ButtonBuilder> {
  return new ActionRowBuilder<ButtonBuilder>().addComponents(
    new ButtonBuilder().setCustomId(`omg:cancel:${eventId}`).setLabel('Cancel').setStyle(ButtonStyle.Danger),
  );
}

/** Next steps under a finished answer of turn `turnId`: each mask as its own image, or segment everything. */
export function nextStepsRow(turnId: string, hasMasks: boolean): ActionRowBuilder<ButtonBuilder> {
  const row = new ActionRowBuilder<ButtonBuilder>();
  if (hasMasks) {
    row.addComponents(new ButtonBuilder().setCustomId(`omg:masks:${turnId}`).setLabel('All masks separately').setStyle(ButtonStyle.Secondary));
  }
  row.addComponents(new ButtonBuilder().setCustomId(`omg:everything:${turnId}`).setLabel('Segment everything').setStyle(ButtonStyle.Secondary));
  return row;
}

/** Reads a custom id written by this file; null for anything else. */
export function parseButton(customId: string): ButtonPress | null {
  const match = /^omg:(cancel|masks|everything):(.+)$/.exec(customId);
  return match ? { action: match[1] as ButtonAction, arg: match[2]! } : null;
}
