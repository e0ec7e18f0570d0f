// City-block distance from each mask pixel to the nearest background pixel, computed inside the mask's bounding box
// (plus a one-pixel background frame, so the image border counts as background). Used for both the contour
// (pixels at distance <= thickness) and the label anchor (the pixel farthest from the background).
import type { BinaryMask } from './rle.js';

export interface DistanceMap {
  x0: number; // image coordinates of dist[0] (top-left of the frame, may be -1)
  y0: number;
  width: number;
  height: number;
  dist: Int32Array; // [height, width]; 0 outside the mask
}

/** Null for an empty mask. Two-pass chamfer transform: O(bbox area). */
export function distanceMap(mask: BinaryMask): DistanceMap | null {
  const { width: W, height: H, data } = mask;
  let minX = W, minY = H, maxX = -1, maxY = -1;
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      if (!data[y * W + x]) continue;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
  }
  if (maxX < 0) return null;
  const x0 = minX - 1, y0 = minY - 1;
  const w = maxX - minX + 3, h = maxY - minY + 3;
  const dist = new Int32Array(w * h);
  const far = w + h;
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) if (data[(y0 + y) * W + x0 + x]) dist[y * w + x] = far;
  }
  for (let y = 1; y < h - 1; y++) {
    for (let x = 1; x < w - 1; x++) {
      const i = y * w + x;
      if (dist[i]) dist[i] = Math.min(dist[i]!, dist[i - w]! + 1, dist[i - 1]! + 1);
    }
  }
  for (let y = h - 2; y >= 1; y--) {
    for (let x = w - 2; x >= 1; x--) {
      const i = y * w + x;
      if (dist[i]) dist[i] = Math.min(dist[i]!, dist[i + w]! + 1, dist[i + 1]! + 1);
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
