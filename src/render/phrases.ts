// Grounded replies as chat text: every phrase that has a mask is marked with that mask's colour and number,
// in the markup each platform shows (Discord markdown, Slack mrkdwn, HTML for the playground), so the words
// and the overlay match. Model text is escaped for the target markup; only our markers are markup.
import { colourFor } from './palette.js';

export type TextFormat = 'discord' | 'slack' | 'html';

export interface GroundedSegment {
  n: number; // region number (#n), which also picks the colour
  phrase: string;
  span: [start: number, end: number] | null; // character offsets of the phrase in the text
  area: number; // mask pixels; 0 when nothing was found (the model was asked for something the image lacks)
}

const escapers: Record<TextFormat, (s: string) => string> = {
  // Backslash-escape Discord's markdown characters so model text cannot bold, spoil or quote by accident.
  discord: (s) => s.replace(/[\\*_~`|>#[\]]/g, '\\$&'),
  // Slack mrkdwn only needs its three control characters escaped (api.slack.com "Escaping text").
  slack: (s) => s.replace(/[&<>]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!),
  html: (s) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!),
};

function marker(format: TextFormat, n: number, phrase: string, area: number): string {
  const c = colourFor(n);
  const text = escapers[format](phrase);
  // An empty mask has no colour in the overlay; say so rather than show a swatch of nothing.
  if (area === 0) {
    switch (format) {
      case 'discord':
        return `**${text}** (#${n}: not found)`;
      case 'slack':
        return `*${text}* (#${n}: not found)`;
      case 'html':
        return `<span class="omg-seg" data-region="${n}">${text}<sup>#${n}: not found</sup></span>`;
    }
  }
  switch (format) {
    case 'discord':
      return `${c.emoji} **${text}** (#${n})`;
    case 'slack':
      return `${c.emoji} *${text}* (#${n})`;
    case 'html':
      return (
        `<span class="omg-seg" data-region="${n}" style="border-bottom:3px solid ${c.hex};background:${c.hex}33">` +
        `${text}<sup>#${n}</sup></span>`
      );
  }
}

/**
 * The text with each placed phrase replaced by its marker. Segments without a usable span (none, out of range,
 * or overlapping an earlier one) are listed after the text, so no mask goes unmentioned.
 */
export function groundedText(text: string, segments: GroundedSegment[], format: TextFormat): string {
  const escape = escapers[format];
  const placed = segments
    .filter((s): s is GroundedSegment & { span: [number, number] } => s.span !== null && s.span[0] >= 0 && s.span[0] < s.span[1] && s.span[1] <= text.length)
    .sort((a, b) => a.span[0] - b.span[0]);
  const used = new Set<GroundedSegment>();
  let out = '';
  let cursor = 0;
  for (const s of placed) {
    if (s.span[0] < cursor) continue;
    out += escape(text.slice(cursor, s.span[0])) + marker(format, s.n, text.slice(s.span[0], s.span[1]), s.area);
    cursor = s.span[1];
    used.add(s);
  }
  out += escape(text.slice(cursor));
  const rest = segments.filter((s) => !used.has(s)).map((s) => marker(format, s.n, s.phrase || `region ${s.n}`, s.area));
  if (rest.length === 0) return out;
  const separator = format === 'html' ? '<br>' : '\n';
  return out.trim() === '' ? rest.join(separator) : `${out}${separator}${rest.join(separator)}`;
}
