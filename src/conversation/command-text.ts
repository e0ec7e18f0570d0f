// Chat commands (Discord slash commands, Slack's /omg) are shorthands for sentences the intent parser already
// understands, so a command and a mention with the same words behave the same.
import { omgError } from '../errors.js';

export type CommandName = 'ask' | 'segment' | 'caption' | 'regions' | 'describe';
export const commandNames: readonly CommandName[] = ['ask', 'segment', 'caption', 'regions', 'describe'];

/** The sentence for a command and its argument text; OMG_ERR_BAD_REQUEST (with the right usage) when it is malformed. */
export function commandSentence(command: CommandName, argument: string, opts: { grounded?: boolean } = {}): string {
  const arg = argument.trim();
  switch (command) {
    case 'ask':
      return arg || usage('ask needs a question, e.g. "ask what is the dog holding?"');
    case 'segment':
      return arg ? `segment ${arg}` : usage('segment needs a target, e.g. "segment the red car"');
    case 'caption':
      return opts.grounded || /^(grounded|with masks)$/i.test(arg) ? 'caption with masks' : 'caption';
    case 'regions':
      return 'segment everything';
    case 'describe':
      return describeSentence(arg);
  }
}

// "#2" / "2", "x,y" and "x1,y1,x2,y2" (pixels or 0-1).
function describeSentence(region: string): string {
  const number = /^#?(\d+)$/.exec(region);
  if (number) return `describe #${number[1]}`;
  const coords = region.replace(/[()[\]\s]/g, '').split(',');
  if (coords.every((c) => c !== '' && Number.isFinite(Number(c)))) {
    if (coords.length === 2) return `what is at (${coords[0]}, ${coords[1]})`;
    if (coords.length === 4) return `describe the box ${coords.join(',')}`;
  }
  return usage('describe needs a region: #n (e.g. #2), a point x,y (e.g. 120,80) or a box x1,y1,x2,y2');
}

function usage(correction: string): never {
  throw omgError('OMG_ERR_BAD_REQUEST', { correction: `${correction[0]!.toUpperCase()}${correction.slice(1)}.` });
}
