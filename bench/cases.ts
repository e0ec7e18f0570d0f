// The three turns the issue names (referring segmentation, grounded caption, region caption), worded exactly as
// the conversation layer words them for the model, each with a follow-up turn on the same image.
import { GCG_QUESTION, referringQuestion, regionCaptionQuestion } from '../src/conversation/intent.js';
import type { VisualPrompt } from '../src/inference/index.js';

export interface Ask { text: string; prompts: VisualPrompt[] }
export interface BenchCase { name: string; first: Ask; followUp: Ask }

export const IMAGE_SIZE = { width: 1024, height: 768 };

export const CASES: BenchCase[] = [
  {
    name: 'referring seg',
    first: { text: referringQuestion('the red circle'), prompts: [] },
    followUp: { text: referringQuestion('the blue square'), prompts: [] },
  },
  {
    name: 'GCG',
    first: { text: GCG_QUESTION, prompts: [] },
    followUp: { text: referringQuestion('the green star'), prompts: [] },
  },
  {
    name: 'region caption',
    first: { text: regionCaptionQuestion('<region>'), prompts: [{ kind: 'box', x1: 200, y1: 150, x2: 600, y2: 500 }] },
    followUp: { text: regionCaptionQuestion('<mark>'), prompts: [{ kind: 'point', x: 700, y: 400 }] },
  },
];
