// Images uploaded to the playground that no question has used yet. The conversation (and its stored copy of the
// image) is created by the first turn, so until then the bytes wait here: a few, bounded, oldest dropped first.

export interface Upload {
  bytes: Uint8Array;
  mime: string;
  name?: string;
  width: number;
  height: number;
}

export class Uploads {
  private readonly byId = new Map<string, Upload>();

  constructor(private readonly capacity = 32) {}

  add(id: string, upload: Upload): void {
    this.byId.set(id, upload);
    for (const oldest of this.byId.keys()) {
      if (this.byId.size <= this.capacity) break;
      this.byId.delete(oldest);
    }
  }

  get(id: string): Upload | undefined {
    return this.byId.get(id);
  }

  delete(id: string): void {
    this.byId.delete(id);
  }
}
