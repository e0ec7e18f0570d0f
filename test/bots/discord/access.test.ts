import { describe, expect, it } from 'vitest';
import { isAllowed } from '../../../src/bots/discord/access.js';
import { loadConfig } from '../../../src/config.js';

const config = (env: Record<string, string> = {}) => loadConfig({ DISCORD_TOKEN: 't', DISCORD_APPLICATION_ID: '1', ...env });
const place = { guildId: 'g1', channelIds: ['c1', 'parent1'], roleIds: ['r1'] };

describe('isAllowed', () => {
  it('allows everything when no list is set, DMs included', () => {
    expect(isAllowed(config(), place)).toBe(true);
    expect(isAllowed(config(), { guildId: null, channelIds: ['dm'], roleIds: [] })).toBe(true);
  });

  it('checks guilds, channels (a thread by its parent too) and roles', () => {
    expect(isAllowed(config({ DISCORD_ALLOWED_GUILDS: 'g2' }), place)).toBe(false);
    expect(isAllowed(config({ DISCORD_ALLOWED_GUILDS: 'g2,g1' }), place)).toBe(true);
    expect(isAllowed(config({ DISCORD_ALLOWED_CHANNELS: 'parent1' }), place)).toBe(true);
    expect(isAllowed(config({ DISCORD_ALLOWED_CHANNELS: 'c9' }), place)).toBe(false);
    expect(isAllowed(config({ DISCORD_ALLOWED_ROLES: 'r2' }), place)).toBe(false);
    expect(isAllowed(config({ DISCORD_ALLOWED_ROLES: 'r2,r1' }), place)).toBe(true);
  });

  it('refuses DMs once any list is set (a DM has no guild, channel or role to check)', () => {
    expect(isAllowed(config({ DISCORD_ALLOWED_ROLES: 'r1' }), { guildId: null, channelIds: ['dm'], roleIds: [] })).toBe(false);
  });
});
