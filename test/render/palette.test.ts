import { describe, expect, it } from 'vitest';
import { colourFor, palette, textColourOn } from '../../src/render/palette.js';

describe('palette', () => {
  it('has distinct colours, names and emoji', () => {
    expect(new Set(palette.map((c) => c.hex)).size).toBe(palette.length);
    expect(new Set(palette.map((c) => c.name)).size).toBe(palette.length);
    expect(new Set(palette.map((c) => c.emoji)).size).toBe(palette.length);
    for (let i = 0; i < palette.length; i++) {
      for (let j = i + 1; j < palette.length; j++) {
        const [a, b] = [palette[i]!.rgb, palette[j]!.rgb];
        const distance = Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
        expect(distance, `${palette[i]!.name} vs ${palette[j]!.name}`).toBeGreaterThan(60);
      }
    }
  });

  it('starts with Okabe–Ito orange and cycles by region number', () => {
    expect(colourFor(1)).toMatchObject({ hex: '#E69F00', rgb: [230, 159, 0], emoji: '🟧' });
    expect(colourFor(palette.length + 2)).toBe(colourFor(2));
    expect(() => colourFor(0)).toThrow(RangeError);
  });

  it('picks readable label text', () => {
    expect(textColourOn(colourFor(4))).toBe('#000000'); // yellow
    expect(textColourOn(colourFor(5))).toBe('#FFFFFF'); // blue
  });
});
