// One turn, from request to posted answer: submit to the conversation service, show progress (typing, "queued,
// #N", streamed text at most once a second per reply), then the grounded answer with its overlay and buttons.
import type { AttachmentPayload, Message } from 'discord.js';
import { isOmgError, toOmgError } from '../../errors.js';
import { Pacer } from '../../conversation/pacer.js';
import { groundedText } from '../../render/phrases.js';
import type { TurnReply } from '../../conversation/service.js';
import type { ImageInput } from './attachments.js';
import { cancelRow, nextStepsRow } from './buttons.js';
import type { DiscordDeps } from './deps.js';
import { MESSAGE_LIMIT, splitMessage } from './split.js';
import type { Surface } from './surface.js';

const EDIT_INTERVAL_MS = 1000;
const TYPING_REFRESH_MS = 8000; // Discord shows "typing" for about 10 s per call
const STREAMING_MARK = ' ▌';

export interface TurnInput {
  eventId: string;
  userId: string;
  channel: string; // conversation channel (the parent channel for a thread)
  thread: string; // conversation thread key
  text: string;
  image?: ImageInput;
}

/** Runs one turn and posts its reply on `surface`; returns the answer's messages (none after a failure, which is
 *  shown as a ⚠️ message, never thrown). */
export async function runTurn(deps: DiscordDeps, input: TurnInput, surface: Surface): Promise<Message[]> {
  const { service, log } = deps;
  const pacer = new Pacer(EDIT_INTERVAL_MS, (text) => surface.progress(text, [cancelRow(input.eventId)]),
    (err) => log.warn({ err, eventId: input.eventId }, 'discord: progress edit failed'));
  const typing = keepTyping(surface, (err) => log.warn({ err }, 'discord: typing indicator failed'));
  let streamed = '';
  try {
    const reply = await service.submit({
      platform: 'discord', ...input,
      onProgress: (ev) => {
        if (ev.type === 'queued' && ev.position > 0) pacer.update(`⏳ queued, #${ev.position}`);
        if (ev.type === 'started') streamed = ''; // a retry starts the text over
        if (ev.type === 'text') {
          streamed += ev.delta;
          pacer.update(streamingView(streamed));
        }
      },
    });
    typing.stop();
    return await pacer.finish(() => surface.final(answerParts(reply), overlayFiles(reply), [nextStepsRow(reply.turnId, reply.segments.some((s) => s.area > 0))]));
  } catch (err) {
    typing.stop();
    const omg = toOmgError(err);
    if (!isOmgError(err)) log.error({ err, eventId: input.eventId }, 'discord: turn failed');
    await pacer.finish(() => surface.error(`⚠️ ${omg.userMessage}`));
    return [];
  }
}

/** The answer text with each phrase in its mask's colour, split into messages Discord accepts. */
export function answerParts(reply: TurnReply): string[] {
  const text = groundedText(reply.text, reply.segments, 'discord');
  return splitMessage(text.trim() === '' ? '(no answer text)' : text);
}

function overlayFiles(reply: TurnReply): AttachmentPayload[] {
  if (!reply.overlay) return [];
  const ext = reply.overlay.mime === 'image/webp' ? 'webp' : 'png';
  return [{ attachment: Buffer.from(reply.overlay.bytes), name: `overlay.${ext}`, description: 'Masks over the image' }];
}

// While streaming only the tail fits in one message; the final answer is split in full.
function streamingView(text: string): string {
  const room = MESSAGE_LIMIT - STREAMING_MARK.length - 1;
  return (text.length > room ? `…${text.slice(-room)}` : text) + STREAMING_MARK;
}

function keepTyping(surface: Surface, onError: (err: unknown) => void): { stop(): void } {
  const send = () => void surface.typing().catch(onError);
  send();
  const timer = setInterval(send, TYPING_REFRESH_MS);
  return { stop: () => clearInterval(timer) };
}
