// The chat prompt at the id level (omg-llava.md §8.3–§8.4): the manifest template, two-chunk tokenisation around
// <image> with BOS once at the very start, and follow-up turns appended as separator + user template without BOS
// (upstream's demo also drops BOS there; we keep the one at the start, as training had it).
// Only the template's own special tokens and the caller's <region>/<mark> placeholders act as special tokens:
// any other special-token string in the question (`<image>`, `[SEG]`, `<|im_end|>`, ...) is tokenised as plain text.
import { Tokenizer } from '@huggingface/tokenizers';
import { omgError } from '../errors.js';
import type { ModelConfig } from './bundle.js';

/** Stands for the image block in id lists; never fed to embed.onnx (upstream IMAGE_TOKEN_INDEX). */
export const IMAGE_ID = -200;

type Piece = string | number; // text to tokenise, or a token id

export class ChatTokenizer {
  private readonly full: Tokenizer;
  private readonly plain: Tokenizer; // the same model without added tokens: special-token strings stay text
  private readonly specials: [string, number][]; // added tokens, longest first (leftmost-longest matching)
  readonly stopIds: Set<number>;

  constructor(tokenizerJson: unknown, private readonly config: ModelConfig) {
    const json = tokenizerJson as { added_tokens?: { content: string; id: number }[] };
    this.full = new Tokenizer(json, {});
    this.plain = new Tokenizer({ ...json, added_tokens: [] }, {});
    this.specials = (json.added_tokens ?? []).map((t): [string, number] => [t.content, t.id]).sort((a, b) => b[0].length - a[0].length);
    this.stopIds = new Set([config.tokens.eos, ...config.template.stop.map((s) => this.singleId(s))]);
  }

  private singleId(text: string): number {
    const ids = this.encodeTrusted(text);
    if (ids.length !== 1) throw omgError('OMG_ERR_BUNDLE_INVALID', { reason: `template stop "${text}" is not a single token` });
    return ids[0]!;
  }

  /** Splits text on the given special strings (leftmost, then longest) into text and id pieces. */
  private split(text: string, specials: [string, number][]): Piece[] {
    const pieces: Piece[] = [];
    let start = 0, i = 0;
    while (i < text.length) {
      const hit = specials.find(([s]) => text.startsWith(s, i));
      if (hit) {
        pieces.push(text.slice(start, i), hit[1]);
        i += hit[0].length;
        start = i;
      } else {
        i++;
      }
    }
    pieces.push(text.slice(start));
    return pieces;
  }

  /** Pieces -> ids: adjacent texts are joined and encoded as one segment, as the tokenizer does between specials. */
  private encodePieces(pieces: Piece[]): number[] {
    const ids: number[] = [];
    let text = '';
    const flush = () => {
      if (text) ids.push(...this.plain.encode(text, { add_special_tokens: false }).ids);
      text = '';
    };
    for (const p of pieces) {
      if (typeof p === 'string') text += p;
      else { flush(); ids.push(p); }
    }
    flush();
    return ids;
  }

  /** Text whose special-token strings are real tokens (the template, the model's own output). */
  encodeTrusted(text: string): number[] {
    return this.encodePieces(this.split(text, this.specials));
  }

  private trusted(text: string): Piece[] { return this.split(text, this.specials); }

  /** The question: only the <region>/<mark> placeholders are tokens; everything else is literal text. */
  private question(text: string): Piece[] {
    const t = this.config.tokens;
    return this.split(text, [['<region>', t.region], ['<mark>', t.mark]]);
  }

  private userTemplate(question: string): { before: Piece[]; after: Piece[]; question: Piece[] } {
    const [before = '', after = ''] = this.config.template.user.split('{input}');
    return { before: this.trusted(before), after: this.trusted(after), question: this.question(question) };
  }

  /**
   * First turn: BOS + encode(system + user-before-input) + [IMAGE_ID] + encode("\n" + question + user-after-input).
   * `template.system` is the literal (already formatted) text before the first user message; empty upstream.
   * The two chunks are encoded separately, as upstream splits the prompt on <image>.
   */
  firstTurn(question: string): number[] {
    const u = this.userTemplate(question);
    const chunk0 = this.encodePieces([...this.trusted(this.config.template.system), ...u.before]);
    const chunk1 = this.encodePieces(['\n', ...u.question, ...u.after]);
    return [this.config.tokens.bos, ...chunk0, IMAGE_ID, ...chunk1];
  }

  /** A follow-up turn: encode(separator + user template with the question), no BOS. */
  followUp(question: string): number[] {
    const u = this.userTemplate(question);
    return this.encodePieces([...this.trusted(this.config.template.separator), ...u.before, ...u.question, ...u.after]);
  }

  /** The answer ids as the history keeps them: ending with a stop id (the first template stop if it hit the limit). */
  closeAnswer(generated: number[]): number[] {
    const last = generated[generated.length - 1];
    if (last !== undefined && this.stopIds.has(last)) return generated;
    const stop = this.config.template.stop[0];
    return [...generated, stop === undefined ? this.config.tokens.eos : this.singleId(stop)];
  }

  /** Counts the prompt placeholders (<region> and <mark> ids) in an id list. */
  placeholders(ids: readonly number[]): number {
    const t = this.config.tokens;
    return ids.reduce((n, id) => n + (id === t.region || id === t.mark ? 1 : 0), 0);
  }

  /** Every added token's text (to strip from answers). */
  specialStrings(): string[] {
    return this.specials.map(([s]) => s);
  }

  /** ids -> text with special tokens kept (the raw answer). */
  decode(ids: readonly number[]): string {
    return this.full.decode([...ids], { skip_special_tokens: false });
  }
}
