// Discord refuses messages over 2,000 characters. Long answers are split at a line break, else at a space, and
// never inside a bold phrase marker, so each part renders on its own.
export const MESSAGE_LIMIT = 2000;

/** Parts of at most `limit` characters (UTF-16 units, as Discord counts) that join back to `text`. */
export function splitMessage(text: string, limit = MESSAGE_LIMIT): string[] {
  const parts: string[] = [];
  let rest = text;
  while (rest.length > limit) {
    const cut = cutPoint(rest, limit);
    parts.push(rest.slice(0, cut));
    rest = rest.slice(cut);
  }
  if (rest.length > 0 || parts.length === 0) parts.push(rest);
  return parts;
}

// The last line break (else space) at or before `limit` with balanced bold markers before it; a hard cut
// (never between a surrogate pair) when there is none.
function cutPoint(text: string, limit: number): number {
  for (const separator of ['\n', ' ']) {
    for (let i = text.lastIndexOf(separator, limit - 1); i > 0; i = text.lastIndexOf(separator, i - 1)) {
      if (boldMarkers(text.slice(0, i)) % 2 === 0) return i + 1;
    }
  }
  const code = text.charCodeAt(limit - 1);
  return code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit;
}

// Unescaped "**" pairs; model text has its own asterisks escaped as "\*" by render/phrases.
function boldMarkers(text: string): number {
  return (text.match(/(?<!\\)\*\*/g) ?? []).length;
}
