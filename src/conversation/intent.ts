// What the user wants, from what they wrote: a free question, referring segmentation, a (grounded) caption,
// a region description from a point, a box or an earlier mask, or segment-everything. `parseIntent` checks
// coordinates and region numbers and answers mistakes with a correction the user can act on;
// `toModelText` writes the request in the exact upstream task wording (spec §10).
import { omgError } from '../errors.js';
import type { BinaryMask } from '../render/rle.js';

/**
 * A visual prompt as a user or a bot gives it: pixels, fractions of the image (normalized), an earlier mask #n,
 * or a mask of the image's size (e.g. the CLI's --mask file).
 */
export type UserPrompt =
  | { kind: 'point'; x: number; y: number; normalized?: boolean }
  | { kind: 'box'; x1: number; y1: number; x2: number; y2: number; normalized?: boolean }
  | { kind: 'region'; n: number }
  | { kind: 'mask'; mask: BinaryMask };

/** A checked prompt in the image's pixels (x2/y2 exclusive); regions are resolved to masks by the service. */
export type IntentPrompt =
  | { kind: 'point'; x: number; y: number }
  | { kind: 'box'; x1: number; y1: number; x2: number; y2: number }
  | { kind: 'region'; n: number }
  | { kind: 'mask'; mask: BinaryMask };

export type Request =
  | { kind: 'ask'; question: string; prompts: IntentPrompt[] }
  | { kind: 'segment'; target: string; prompts: IntentPrompt[] }
  | { kind: 'caption'; grounded: boolean; prompts: IntentPrompt[] }
  | { kind: 'describe'; prompt: IntentPrompt }
  | { kind: 'everything' };

export interface IntentContext {
  width: number;
  height: number;
  regionCount: number; // regions #1..#regionCount exist in the conversation
  prompts?: UserPrompt[]; // clicks and drags from the UI, in addition to the text
  maxChars?: number;
}

export const DEFAULT_MAX_CHARS = 1000;

// Upstream task strings (spec §10.1, §10.3 question 1, §10.4 region caption, §10.5 demo caption).
export const referringQuestion = (target: string) => `Please segment ${target} in this image.`;
export const GCG_QUESTION =
  'Could you please give me a detailed description of the image? Please respond with interleaved segmentation masks for the corresponding parts of the answer.';
export const CAPTION_QUESTION = 'Could you please give me a detailed description of the image?';
export const regionCaptionQuestion = (placeholder: string) =>
  `Can you provide me with a detailed description of the region in the picture marked by region1 ${placeholder}?`;
const MANY_REGIONS_QUESTION = 'Can you provide me with a detailed description of each of these regions?';

const END = String.raw`\s*[.!?]*$`;
const EVERYTHING = new RegExp(
  String.raw`^(?:(?:please\s+)?(?:segment|label|find|show)\s+(?:everything|all(?:\s+the)?\s+(?:objects|regions|masks|things))|regions|all\s+masks|everything|panoptic(?:\s+segmentation)?)${END}`,
  'i',
);
const POINT = /^(?:what(?:'s|\s+is)\s+(?:at|here\s+at)(?:\s+point)?|describe\s+(?:the\s+)?point(?:\s+at)?)\b\s*(.*)$/is;
const BOX = /^(?:describe|what(?:'s|\s+is)\s+in)\s+(?:the\s+)?(?:box|area|rectangle|rect)(?:\s+at)?\b\s*(.*)$/is;
const REGION = /^(?:describe|what(?:'s|\s+is))\s+(?:region\s*#?|mask\s*#?|#)\s*(\S*?)\s*[.!?]*$/is;
const GROUNDED = new RegExp(
  String.raw`^(?:grounded\s+caption|caption\s+(?:(?:this|it|the\s+image|this\s+image)\s+)?with\s+(?:masks|segmentation(?:\s+masks)?)|describe\s+(?:the\s+image|this\s+image|this|it)\s+with\s+masks)${END}`,
  'i',
);
const CAPTION = new RegExp(
  String.raw`^(?:caption(?:\s+(?:this|it|the\s+image|this\s+image))?|describe\s+(?:the|this)\s+(?:image|picture|photo)|describe\s+(?:this|it))${END}`,
  'i',
);
const SEGMENT = /^(?:please\s+)?(?:segment|highlight|find|show\s+me|where\s+is|where's)\s+(.+?)(?:\s+in\s+(?:this|the)\s+(?:image|picture|photo))?\s*[.!?]*$/is;

// A question that only points ("what is this?") about one clicked place: the region caption wording the model knows.
const POINTING = new RegExp(String.raw`^(?:what(?:'s|\s+is)\s+(?:this|that|it|here)|describe\s+(?:this|that|it|here))${END}`, 'i');

const badRequest = (correction: string) => omgError('OMG_ERR_BAD_REQUEST', { correction });

/** Throws OMG_ERR_BAD_REQUEST (with a correction) or OMG_ERR_UNKNOWN_REGION. */
export function parseIntent(userText: string, ctx: IntentContext): Request {
  const text = userText.trim();
  const maxChars = ctx.maxChars ?? DEFAULT_MAX_CHARS;
  if (text.length > maxChars) {
    throw badRequest(`Your message is ${text.length} characters long; please keep it under ${maxChars}.`);
  }
  const uiPrompts = (ctx.prompts ?? []).map((p) => checkPrompt(p, ctx));
  const textPrompt = (prompt: IntentPrompt): Request => {
    if (uiPrompts.length > 0) throw badRequest('Give the place either in the text or by clicking on the image, not both.');
    return { kind: 'describe', prompt };
  };

  if (text === '') {
    if (uiPrompts.length === 0) return { kind: 'caption', grounded: true, prompts: [] };
    if (uiPrompts.length === 1) return { kind: 'describe', prompt: uiPrompts[0]! };
    return { kind: 'ask', question: MANY_REGIONS_QUESTION, prompts: uiPrompts };
  }
  if (EVERYTHING.test(text)) {
    if (uiPrompts.length > 0) throw badRequest('"Segment everything" works on the whole image; leave out the clicks and boxes.');
    return { kind: 'everything' };
  }
  if (uiPrompts.length === 1 && POINTING.test(text)) return { kind: 'describe', prompt: uiPrompts[0]! };
  let m: RegExpMatchArray | null;
  if ((m = text.match(POINT)) && looksLikeCoordinates(m[1]!)) {
    const [x, y] = numbers(m[1]!, 2, 'what is at (120, 80)" or "what is at 0.3, 0.4');
    return textPrompt(checkPrompt({ kind: 'point', x: x!.value, y: y!.value, normalized: fractions([x!, y!]) }, ctx));
  }
  if ((m = text.match(BOX)) && looksLikeCoordinates(m[1]!)) {
    const [x1, y1, x2, y2] = numbers(m[1]!, 4, 'describe the box 10,20,110,90" (left, top, right, bottom');
    const normalized = fractions([x1!, y1!, x2!, y2!]);
    return textPrompt(checkPrompt({ kind: 'box', x1: x1!.value, y1: y1!.value, x2: x2!.value, y2: y2!.value, normalized }, ctx));
  }
  if ((m = text.match(REGION)) && (/^\d+$/.test(m[1]!) || text.includes('#'))) {
    const n = Number(m[1]);
    if (!/^\d+$/.test(m[1]!) || n < 1) throw badRequest('Regions are numbered from 1: say "describe #2" or "describe region 2".');
    return textPrompt(checkPrompt({ kind: 'region', n }, ctx));
  }
  if (GROUNDED.test(text)) return { kind: 'caption', grounded: true, prompts: uiPrompts };
  if (CAPTION.test(text)) return { kind: 'caption', grounded: false, prompts: uiPrompts };
  if ((m = text.match(SEGMENT))) return { kind: 'segment', target: m[1]!.trim(), prompts: uiPrompts };
  return { kind: 'ask', question: text, prompts: uiPrompts };
}

/** "what is at the door?" is a question; "what is at (x, y)", "at 12 40" or "at NaN, 3" are coordinates to check. */
function looksLikeCoordinates(rest: string): boolean {
  return /^[([\d+\-.]/.test(rest) || /^[^\s,]+\s*[,;]/.test(rest);
}

interface ParsedNumber {
  value: number;
  decimal: boolean; // written with a decimal point
}

/** Coordinates are fractions of the image when all lie in 0..1 and at least one is written with a decimal point. */
const fractions = (cs: ParsedNumber[]) => cs.every((c) => c.value >= 0 && c.value <= 1) && cs.some((c) => c.decimal);

function numbers(rest: string, count: number, example: string): ParsedNumber[] {
  const parts = rest.replace(/[()[\]]/g, ' ').replace(/[?!]+$/, '').replace(/\.$/, '').split(/[\s,;]+/).filter(Boolean);
  const what = count === 2 ? 'two numbers, x and y' : 'four numbers, x1,y1,x2,y2';
  if (parts.length !== count) throw badRequest(`I need ${what}, for example "${example}".`);
  return parts.map((part) => {
    const value = Number(part);
    if (!Number.isFinite(value)) throw badRequest(`"${part}" is not a number. I need ${what}, for example "${example}".`);
    return { value, decimal: part.includes('.') };
  });
}

/** Validates a prompt against the image and converts fractions to pixels. */
export function checkPrompt(prompt: UserPrompt, ctx: Pick<IntentContext, 'width' | 'height' | 'regionCount'>): IntentPrompt {
  const { width: W, height: H } = ctx;
  if (prompt.kind === 'region') {
    if (!Number.isInteger(prompt.n) || prompt.n < 1 || prompt.n > ctx.regionCount) {
      throw omgError('OMG_ERR_UNKNOWN_REGION', { region: prompt.n, count: ctx.regionCount });
    }
    return { kind: 'region', n: prompt.n };
  }
  if (prompt.kind === 'mask') {
    const { mask } = prompt;
    if (mask.width !== W || mask.height !== H) {
      throw badRequest(`The mask is ${mask.width}x${mask.height} pixels but the image is ${W}x${H}; masks must have the image's size.`);
    }
    if (!mask.data.some((v) => v !== 0)) throw badRequest('The mask is empty: mark the region with non-zero pixels.');
    return prompt;
  }
  const values = prompt.kind === 'point' ? [prompt.x, prompt.y] : [prompt.x1, prompt.y1, prompt.x2, prompt.y2];
  const shown = values.join(', ');
  if (values.some((v) => typeof v !== 'number' || !Number.isFinite(v))) throw badRequest(`Coordinates must be numbers (got ${shown}).`);
  if (values.some((v) => v < 0)) throw badRequest(`Coordinates cannot be negative (got ${shown}).`);
  const range =
    `The image is ${W}x${H} pixels: x goes from 0 to ${W - 1} and y from 0 to ${H - 1}. ` +
    'You can also give fractions of the image, e.g. 0.5, 0.5 for the centre.';
  if (prompt.normalized && values.some((v) => v > 1)) throw badRequest(`Fractions of the image go from 0 to 1 (got ${shown}).`);
  if (prompt.kind === 'point') {
    const x = prompt.normalized ? Math.min(W - 1, prompt.x * W) : prompt.x;
    const y = prompt.normalized ? Math.min(H - 1, prompt.y * H) : prompt.y;
    if (x >= W || y >= H) throw badRequest(`The point (${shown}) lies outside the image. ${range}`);
    return { kind: 'point', x, y };
  }
  const [sx, sy] = prompt.normalized ? [W, H] : [1, 1];
  const box = { kind: 'box' as const, x1: prompt.x1 * sx, y1: prompt.y1 * sy, x2: prompt.x2 * sx, y2: prompt.y2 * sy };
  if (box.x2 <= box.x1 || box.y2 <= box.y1) {
    throw badRequest(
      `A box is x1,y1,x2,y2 with the top-left corner first, so x2 must be greater than x1 and y2 greater than y1 (got ${shown}).`,
    );
  }
  if (box.x2 > W || box.y2 > H) throw badRequest(`The box (${shown}) reaches outside the image. ${range}`);
  return box;
}

// Strings the tokenizer would read as control tokens: chat-template markers, <image>, <p>, </p>, <region>, <mark>,
// <s>, </s> (any <tag> or <|tag|>), and [SEG].
const CONTROL_TOKEN = /<\/?\|?[a-z_][\w|]*>|\[seg\]/gi;

/** Breaks control-token strings typed by a user with a zero-width joiner after the opening bracket: same look, plain text. */
export function neutralise(text: string): string {
  return text.replace(CONTROL_TOKEN, (token) => `${token[0]}\u200d${token.slice(1)}`);
}

const placeholder = (p: IntentPrompt) => (p.kind === 'point' ? '<mark>' : '<region>');

/**
 * The model text of a request, with one placeholder per prompt in `prompts` order (boxes and masks are `<region>`,
 * points `<mark>`). Prompts that come with a question are listed first in the Osprey/MDPV form of spec §10.4.
 */
export function toModelText(request: Request): { text: string; prompts: IntentPrompt[] } {
  switch (request.kind) {
    case 'everything':
      return { text: '', prompts: [] };
    case 'describe':
      return { text: regionCaptionQuestion(placeholder(request.prompt)), prompts: [request.prompt] };
    case 'segment':
      return withPrompts(referringQuestion(neutralise(request.target)), request.prompts);
    case 'caption':
      return withPrompts(request.grounded ? GCG_QUESTION : CAPTION_QUESTION, request.prompts);
    case 'ask':
      return withPrompts(neutralise(request.question), request.prompts);
  }
}

function withPrompts(question: string, prompts: IntentPrompt[]): { text: string; prompts: IntentPrompt[] } {
  const regions = prompts.filter((p) => p.kind !== 'point');
  const marks = prompts.filter((p) => p.kind === 'point');
  const list = (items: IntentPrompt[], name: (i: number) => string) => items.map((p, i) => `${name(i + 1)} ${placeholder(p)}`).join(', ');
  const lines = [
    ...(regions.length ? [`There are some regions: ${list(regions, (i) => `region${i}`)}.`] : []),
    ...(marks.length ? [`There are some marks: ${list(marks, (i) => `Mark ${i}`)}.`] : []),
    question,
  ];
  return { text: lines.join('\n'), prompts: [...regions, ...marks] };
}
