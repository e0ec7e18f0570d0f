// Mask colours: the Okabe–Ito palette (Okabe & Ito 2008), which stays distinguishable under the common forms of colour
// blindness. Black, its first entry, is left out: it is the colour of contours' outlines and label text.
// Every colour carries an emoji in a matching hue so chat text can point at a mask without any markup:
//   #1 orange 🟧, #2 sky blue 🟦, #3 bluish green 🟩, #4 yellow 🟨, #5 blue 🔵 (a circle, because 🟦 is taken),
//   #6 vermillion 🟥, #7 reddish purple 🟪; region #8 starts again at orange (the number in the label tells them apart).

export interface PaletteColour {
  hex: string;
  rgb: [r: number, g: number, b: number];
  name: string;
  emoji: string;
}

const colour = (hex: string, name: string, emoji: string): PaletteColour => ({
  hex,
  rgb: [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)],
  name,
  emoji,
});

export const palette: readonly PaletteColour[] = Object.freeze([
  colour('#E69F00', 'orange', '🟧'),
  colour('#56B4E9', 'sky blue', '🟦'),
  colour('#009E73', 'bluish green', '🟩'),
  colour('#F0E442', 'yellow', '🟨'),
  colour('#0072B2', 'blue', '🔵'),
  colour('#D55E00', 'vermillion', '🟥'),
  colour('#CC79A7', 'reddish purple', '🟪'),
]);

/** The colour of region #n (n from 1): a region keeps its colour in every overlay and reply of a conversation. */
export function colourFor(n: number): PaletteColour {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`region numbers start at 1, got ${n}`);
  return palette[(n - 1) % palette.length]!;
}

/** Black or white, whichever reads better on the colour (WCAG relative luminance). */
export function textColourOn(c: PaletteColour): '#000000' | '#FFFFFF' {
  const [r, g, b] = c.rgb.map((v) => {
    const s = v / 255;
    return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  }) as [number, number, number];
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return luminance > 0.179 ? '#000000' : '#FFFFFF';
}
