// Numbered labels: a small rounded tag in the mask's colour, outlined in black so it reads on any background,
// centred on the mask's most interior pixel and kept inside the image.
import type { OverlayOptions } from 'sharp';
import { textColourOn, type PaletteColour } from './palette.js';

export const FONT_FAMILY = 'DejaVu Sans';

/** Label text size for an image: readable on thumbnails, not dominant on large photos. */
export function labelFontSize(width: number, height: number): number {
  return Math.max(11, Math.min(40, Math.round(Math.min(width, height) / 28)));
}

export function labelComposite(
  n: number,
  colour: PaletteColour,
  anchor: [number, number],
  image: { width: number; height: number },
): OverlayOptions {
  const font = labelFontSize(image.width, image.height);
  const text = String(n);
  const w = Math.min(image.width, Math.ceil(text.length * font * 0.7 + font * 0.6));
  const h = Math.min(image.height, Math.ceil(font * 1.3));
  const left = Math.max(0, Math.min(image.width - w, Math.round(anchor[0] - w / 2)));
  const top = Math.max(0, Math.min(image.height - h, Math.round(anchor[1] - h / 2)));
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">` +
    `<rect x="0.75" y="0.75" width="${w - 1.5}" height="${h - 1.5}" rx="${font * 0.25}" fill="${colour.hex}" stroke="#000000" stroke-width="1.5"/>` +
    `<text x="${w / 2}" y="${h / 2}" font-family="${FONT_FAMILY}" font-weight="bold" font-size="${font}" ` +
    `fill="${textColourOn(colour)}" text-anchor="middle" dominant-baseline="central">${text}</text></svg>`;
  return { input: Buffer.from(svg), left, top };
}
