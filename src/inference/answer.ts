// Turning the raw answer into what users see (omg-llava.md §9.4): `<p> phrase </p> [SEG]` pairs each phrase with
// the mask of the [SEG] after it; the clean text has every tag removed, and each segment carries its phrase's
// character span in the clean text so renderers can colour it.
import type { Mask } from './postprocess.js';

export interface Segment { phrase: string; span: [number, number] | null; mask: Mask } // span: [start, end) JS string indices in Answer.text

export interface AnswerTags { pOpen: string; pClose: string; seg: string; other: string[] } // other: special strings to drop

const PUNCTUATION = /^[.,;:!?)]/;

/**
 * Pairs masks with phrases and cleans the text. masks[k] belongs to the k-th [SEG] (a final [SEG] without a hidden
 * state has no mask and is dropped). A [SEG] pairs with the last phrase closed since the previous [SEG], or with
 * none (phrase '', span null) as in "It is [SEG].".
 */
export function parseAnswer(raw: string, masks: Mask[], tags: AnswerTags): { text: string; segments: Segment[] } {
  const all = [tags.pOpen, tags.pClose, tags.seg, ...tags.other].sort((a, b) => b.length - a.length);
  const pattern = new RegExp(all.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
  let out = '';
  const appendText = (t: string) => {
    if (out === '' || /\s$/.test(out)) t = t.replace(/^[ \t]+/, '');
    if (PUNCTUATION.test(t)) out = out.replace(/[ \t]+$/, '');
    out += t;
  };
  const segments: Segment[] = [];
  let phrase: string | null = null; // text inside an open <p>
  let pending: { phrase: string; span: [number, number] } | null = null;
  let segIndex = 0;
  let pos = 0;
  const onText = (t: string) => { if (phrase !== null) phrase += t; else if (t) appendText(t); };
  for (const match of raw.matchAll(pattern)) {
    onText(raw.slice(pos, match.index));
    pos = match.index + match[0].length;
    const tag = match[0];
    if (tag === tags.pOpen) {
      if (phrase !== null) appendText(phrase); // an unclosed <p> keeps its words as text
      phrase = '';
    } else if (tag === tags.pClose && phrase !== null) {
      const words = phrase.trim();
      phrase = null;
      if (out !== '' && !/\s$/.test(out)) out += ' ';
      pending = { phrase: words, span: [out.length, out.length + words.length] };
      out += words;
    } else if (tag === tags.seg) {
      const mask = masks[segIndex++];
      if (mask) segments.push({ phrase: pending?.phrase ?? '', span: pending?.span ?? null, mask });
      pending = null;
    }
  }
  onText(raw.slice(pos));
  if (phrase !== null) appendText(phrase);
  return { text: out.trimEnd(), segments };
}
