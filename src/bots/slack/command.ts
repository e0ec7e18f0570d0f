// /omg ask|segment|caption|regions|describe: a shorthand for the same sentence typed in a thread. Slash commands
// carry no files, so the command works on the user's latest conversation in the channel.
import type { App } from '@slack/bolt';
import { commandNames, commandSentence, type CommandName } from '../../conversation/command-text.js';
import { toOmgError } from '../../errors.js';
import type { SlackContext } from './context.js';
import { runTurn } from './turn.js';

const USAGE = 'Usage: /omg ask QUESTION | segment TARGET | caption [grounded] | regions | describe #n|x,y|x1,y1,x2,y2';

export function registerCommand(app: App, ctx: SlackContext): void {
  app.command('/omg', async ({ command, ack, client }) => {
    const [verb = '', ...rest] = command.text.trim().split(/\s+/);
    let text: string;
    try {
      if (!commandNames.includes(verb as CommandName)) {
        await ack({ response_type: 'ephemeral', text: USAGE });
        return;
      }
      text = commandSentence(verb as CommandName, rest.join(' '));
      ctx.limiter.take(`slack:${command.user_id}`);
    } catch (err) {
      await ack({ response_type: 'ephemeral', text: `⚠️ ${toOmgError(err).userMessage}` });
      return;
    }
    const thread = ctx.latestOf(command.channel_id, command.user_id);
    if (!thread) {
      await ack({ response_type: 'ephemeral', text: 'Mention me with an image first; /omg then works on your latest image in this channel.' });
      return;
    }
    await ack();
    if (!ctx.firstTime(`command:${command.trigger_id}`)) return;
    await runTurn(ctx, client, { eventId: `command:${command.trigger_id}`, userId: command.user_id, channel: command.channel_id, thread, text });
  });
}
