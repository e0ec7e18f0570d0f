// Writes the corpus for inspection or manual runs, or prints the README table.
//   npx tsx test/corpus/generate.ts OUT_DIR   one folder per case: the file (under the name the user sent) and case.json
//   npx tsx test/corpus/generate.ts --table   the markdown table of test/corpus/README.md
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exitCodeFor, exitCodes } from '../../src/bots/cli/exit-codes.js';
import { corpus, SCENE, type CorpusCase } from './cases.js';

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const shown = (text: string) => (text.length > 40 ? `${[...text].slice(0, 30).join('')}… (${text.length} chars)` : text);

function row(c: CorpusCase): string {
  const input = c.conversation === 'two-masks' ? 'follow-up, masks #1 #2' : c.conversation === 'new-thread' ? 'no file, new thread' : (c.file ?? SCENE).name;
  const outcome = c.expect === 'answer' ? `answered${c.size ? ` (${c.size.join('×')})` : ''}` : `\`${c.expect}\``;
  const exit = c.cli?.exit ?? (c.expect === 'answer' ? exitCodes.ok : exitCodeFor(c.expect));
  const message = c.message ? ` /${c.message.source}/` : '';
  const web = c.web ? `\`${c.web}\`` : 'same';
  return `| \`${c.id}\` | ${cell(c.what)} | ${cell(input)} | ${cell(JSON.stringify(shown(c.text)))} | ${outcome}${cell(message)} | ${web} | ${exit} |`;
}

export function table(): string {
  return [
    '| case | what | file | text | TurnService outcome (message) | playground API | CLI exit |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...corpus.map(row),
  ].join('\n');
}

async function writeAll(out: string): Promise<void> {
  for (const c of corpus) {
    const dir = join(out, c.id);
    await mkdir(dir, { recursive: true });
    const file = c.file ?? SCENE;
    if (!c.conversation) await writeFile(join(dir, file.name), await file.bytes());
    if (c.cli?.mask) await writeFile(join(dir, 'mask.png'), await c.cli.mask());
    const { file: _file, cli, message, ...rest } = c;
    await writeFile(join(dir, 'case.json'), `${JSON.stringify({ ...rest, file: c.conversation ? null : file.name, message: message?.source, cliArgs: cli?.args ?? [] }, null, 2)}\n`);
  }
  process.stdout.write(`${corpus.length} cases written to ${out}\n`);
}

const [arg] = process.argv.slice(2);
if (arg === '--table') process.stdout.write(`${table()}\n`);
else if (arg) await writeAll(arg);
else process.stderr.write('usage: tsx test/corpus/generate.ts OUT_DIR | --table\n');
