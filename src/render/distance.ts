// City-block distance from each mask pixel to the nearest background pixel, computed inside the mask's bounding box
// (plus a one-pixel background frame, so the image border counts as background). Used for both the contour
// (pixels at distance <= thickness) and the label anchor (the pixel farthest from the background).
// Written as tight typed-array loops: it runs once per mask on full-size images, inside the render budget.
import type { BinaryMask } from './rle.js';

export interface DistanceMap {
  x0: number; // image coordinates of dist[0] (top-left of the frame, may be -1)
  y0: number;
  width: number;
  height: number;
  dist: Int32Array; // [height, width]; 0 outside the mask
}

/** The mask's bounding box, found row by row with native indexOf/lastIndexOf scans; null when empty. */
function boundingBox({ width: W, height: H, data }: BinaryMask): [number, number, number, number] | null {
  let minX = W, minY = -1, maxX = -1, maxY = -1;
  for (let y = 0; y < H; y++) {
    const row = data.subarray(y * W, (y + 1) * W);
    const first = row.indexOf(1);
    if (first < 0) continue;
    if (minY < 0) minY = y;
    maxY = y;
    if (first < minX) minX = first;
    const last = row.lastIndexOf(1);
    if (last > maxX) maxX = last;
  }
  return maxY < 0 ? null : [minX, minY, maxX, maxY];
}

/** Null for an empty mask. Two-pass chamfer transform: O(bbox area). */
export function distanceMap(mask: BinaryMask): DistanceMap | null {
  const box = boundingBox(mask);
  if (!box) return null;
  const { width: W, data } = mask;
  const [minX, minY, maxX, maxY] = box;
  const x0 = minX - 1, y0 = minY - 1;
  const w = maxX - minX + 3, h = maxY - minY + 3;
  const dist = new Int32Array(w * h);
  const far = w + h;
  for (let y = 1; y < h - 1; y++) {
    const src = (y0 + y) * W + x0, dst = y * w;
    for (let x = 1; x < w - 1; x++) if (data[src + x]) dist[dst + x] = far;
  }
  for (let y = 1; y < h - 1; y++) {
    for (let i = y * w + 1, end = y * w + w - 1; i < end; i++) {
      let d = dist[i]!;
      if (d === 0) continue;
      const up = dist[i - w]! + 1, left = dist[i - 1]! + 1;
      if (up < d) d = up;
      if (left < d) d = left;
      dist[i] = d;
    }
  }
  for (let y = h - 2; y >= 1; y--) {
    for (let i = y * w + w - 2, end = y * w; i > end; i--) {
      let d = dist[i]!;
      if (d === 0) continue;
      const down = dist[i + w]! + 1, right = dist[i + 1]! + 1;
      if (down < d) d = down;
      if (right < d) d = right;
      dist[i] = d;
    }
  }
  return { x0, y0, width: w, height: h, dist };
}

/** The most interior pixel (largest distance; on ties the one nearest the box centre), in image coordinates. */
export function interiorPoint(map: DistanceMap): [x: number, y: number] {
  const cx = (map.width - 1) / 2, cy = (map.height - 1) / 2;
  let best = 0, bestOffCentre = Infinity;
  for (let i = 0; i < map.dist.length; i++) {
    const d = map.dist[i]!;
    if (d < map.dist[best]! || d === 0) continue;
    const offCentre = Math.abs((i % map.width) - cx) + Math.abs(Math.floor(i / map.width) - cy);
    if (d > map.dist[best]! || offCentre < bestOffCentre) {
      best = i;
      bestOffCentre = offCentre;
    }
  }
  return [map.x0 + (best % map.width), map.y0 + Math.floor(best / map.width)];
}
