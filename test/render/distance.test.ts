import { describe, expect, it } from 'vitest';
import { distanceMap, interiorPoint } from '../../src/render/distance.js';

function mask(width: number, height: number, rows: string[]) {
  return { width, height, data: Uint8Array.from(rows.join('').split(''), (c) => (c === '#' ? 1 : 0)) };
}

describe('distanceMap', () => {
  it('measures city-block distance to the background, the image border included', () => {
    const m = mask(5, 4, ['.....', '.###.', '.###.', '.....']);
    const map = distanceMap(m)!;
    expect([map.x0, map.y0, map.width, map.height]).toEqual([0, 0, 5, 4]);
    expect(Array.from(map.dist)).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
    const edge = distanceMap(mask(3, 1, ['###']))!;
    expect(Array.from(edge.dist.subarray(edge.width, 2 * edge.width))).toEqual([0, 1, 1, 1, 0]);
    expect(distanceMap(mask(2, 1, ['..']))).toBeNull();
  });

  it('anchors labels at the deepest pixel, nearest the centre on ties', () => {
    const blob = mask(7, 5, ['.......', '.#####.', '.#####.', '.#####.', '.......']);
    expect(interiorPoint(distanceMap(blob)!)).toEqual([3, 2]);
    const strip = mask(9, 1, ['#########']);
    expect(interiorPoint(distanceMap(strip)!)).toEqual([4, 0]);
  });
});
