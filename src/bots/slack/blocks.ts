// The answer in Block Kit: the grounded text (each phrase in its mask's colour and number, as in the overlay) and
// a legend line that pairs every colour with its region. `text` is the plain fallback for notifications.
import type { types } from '@slack/bolt';
import type { TurnReply } from '../../conversation/service.js';
import { groundedText } from '../../render/phrases.js';

const SECTION_LIMIT = 3000; // characters of mrkdwn per section block
const FALLBACK_LIMIT = 3000;

export function answerBlocks(reply: TurnReply): { text: string; blocks: types.KnownBlock[] } {
  const grounded = groundedText(reply.text, reply.segments, 'slack');
  const blocks: types.KnownBlock[] = chunks(grounded.trim() || '(no answer text)', SECTION_LIMIT)
    .map((part) => ({ type: 'section', text: { type: 'mrkdwn', text: part } }));
  if (reply.segments.length > 0) {
    const legend = reply.segments
      .map((s) => (s.area === 0 ? `#${s.n} ${escape(s.label ?? s.phrase)} (not found)` : `${s.colour.emoji} #${s.n} ${escape(s.label ?? s.phrase)}`))
      .join('   ');
    blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: legend.slice(0, SECTION_LIMIT) }] });
  }
  const text = reply.text.trim() || `${reply.segments.length} regions`;
  return { text: text.slice(0, FALLBACK_LIMIT), blocks };
}

// Splits at a line break, else a space, so each section stays readable.
function chunks(text: string, limit: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > limit) {
    const at = Math.max(rest.lastIndexOf('\n', limit - 1), rest.lastIndexOf(' ', limit - 1));
    const cut = at > 0 ? at + 1 : limit;
    out.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  out.push(rest);
  return out;
}

// mrkdwn control characters (api.slack.com "Escaping text").
function escape(s: string): string {
  return s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!);
}
