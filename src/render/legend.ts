// The optional legend strip under the overlay: one row per mask with its colour swatch, number and phrase,
// so the picture stays readable when it is shared without the chat text.
import { FONT_FAMILY, labelFontSize } from './labels.js';
import type { PaletteColour } from './palette.js';

export interface LegendEntry {
  n: number;
  colour: PaletteColour;
  text: string;
}

const escapeXml = (s: string): string =>
  s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);

/** An SVG strip `width` wide; long phrases are cut with an ellipsis to fit one line. */
export function legendSvg(width: number, imageHeight: number, entries: LegendEntry[]): { svg: Buffer; height: number } {
  const font = labelFontSize(width, imageHeight);
  const row = Math.round(font * 1.6);
  const pad = Math.round(font * 0.5);
  const height = entries.length * row + 2 * pad;
  const textX = pad + font * 1.6;
  const maxChars = Math.max(4, Math.floor((width - textX - pad) / (font * 0.6)));
  const rows = entries.map((e, i) => {
    const y = pad + i * row;
    const full = `#${e.n} ${e.text}`.trim();
    const line = full.length > maxChars ? `${full.slice(0, maxChars - 1)}…` : full;
    return (
      `<rect x="${pad}" y="${y + (row - font) / 2}" width="${font}" height="${font}" fill="${e.colour.hex}" stroke="#000000" stroke-width="1"/>` +
      `<text x="${textX}" y="${y + row / 2}" font-family="${FONT_FAMILY}" font-size="${font}" fill="#000000" ` +
      `dominant-baseline="central">${escapeXml(line)}</text>`
    );
  });
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="${width}" height="${height}" fill="#FFFFFF"/>${rows.join('')}</svg>`;
  return { svg: Buffer.from(svg), height };
}
