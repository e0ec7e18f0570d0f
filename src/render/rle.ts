// Run-length encoding of binary masks, the form masks take in job results, stored regions and the cut-out JSON.
// Runs are row-major and always start with a run of 0s (possibly empty), so a decoder never has to guess the first value.

/** A 0/1 mask at the original image size, row-major (structurally the same as the inference core's BinaryMask). */
export interface BinaryMask {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface Rle {
  size: [height: number, width: number];
  counts: number[];
}

export function encode(mask: BinaryMask): Rle {
  const { width, height, data } = mask;
  if (data.length !== width * height) throw new RangeError(`mask data has ${data.length} values, expected ${width}x${height}`);
  const counts: number[] = [];
  let value = 0;
  let run = 0;
  for (let i = 0; i < data.length; i++) {
    const bit = data[i] ? 1 : 0;
    if (bit !== value) {
      counts.push(run);
      value = bit;
      run = 0;
    }
    run++;
  }
  counts.push(run);
  return { size: [height, width], counts };
}

export function decode(rle: Rle): BinaryMask {
  const [height, width] = rle.size;
  const data = new Uint8Array(width * height);
  let offset = 0;
  for (let i = 0; i < rle.counts.length; i++) {
    const run = rle.counts[i]!;
    if (!Number.isInteger(run) || run < 0 || offset + run > data.length) {
      throw new RangeError(`RLE run ${i} (${run}) does not fit a ${width}x${height} mask`);
    }
    if (i % 2 === 1) data.fill(1, offset, offset + run);
    offset += run;
  }
  if (offset !== data.length) throw new RangeError(`RLE covers ${offset} pixels, expected ${width * height}`);
  return { width, height, data };
}

/** Pixels set in an RLE mask, without decoding it. */
export function area(rle: Rle): number {
  let total = 0;
  for (let i = 1; i < rle.counts.length; i += 2) total += rle.counts[i]!;
  return total;
}
