// The allow-list guard: which guilds, channels and roles the bot answers in. An empty list allows everything.
import type { Config } from '../../config.js';

export interface Place {
  guildId: string | null;      // null in DMs
  channelIds: string[];        // the channel, and for a thread also its parent
  roleIds: string[];           // the member's roles (none in DMs)
}

/** True when every configured allow-list admits this place. DMs pass only when no guild or role list is set,
 *  since a DM has neither a guild nor roles to check. */
export function isAllowed(config: Config, place: Place): boolean {
  const { DISCORD_ALLOWED_GUILDS: guilds, DISCORD_ALLOWED_CHANNELS: channels, DISCORD_ALLOWED_ROLES: roles } = config;
  if (place.guildId === null) return guilds.length === 0 && roles.length === 0 && channels.length === 0;
  if (guilds.length > 0 && !guilds.includes(place.guildId)) return false;
  if (channels.length > 0 && !place.channelIds.some((id) => channels.includes(id))) return false;
  if (roles.length > 0 && !place.roleIds.some((id) => roles.includes(id))) return false;
  return true;
}
