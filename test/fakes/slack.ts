// A loopback stand-in for Slack: the Web API (under /api/, for Bolt's `clientOptions.slackApiUrl`), the external
// upload URLs that files.uploadV2 posts to, a files host serving `url_private` (HTML login page without the bot
// token, as Slack does), a Socket Mode WebSocket (apps.connections.open), and a sender of signed Events API /
// slash-command POSTs to Bolt's HTTP receiver.
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { Conditions } from './conditions.js';

export const BOT_TOKEN = 'xoxb-fake-bot-token';
export const APP_TOKEN = 'xapp-fake-app-token';
export const SIGNING_SECRET = 'fake-signing-secret';
export const BOT_USER_ID = 'UBOT00001';
export const TEAM_ID = 'TFAKE0001';
export const CHANNEL = 'CFAKE0001';

export interface ApiCall { method: string; args: Record<string, any>; files: { name: string; bytes: Uint8Array }[]; status: number; at: number }
export interface SlackMessage { channel: string; ts: string; thread_ts?: string; text: string; blocks?: any[]; updates: number; files: string[] }
interface Failure { method: string; status: number; retryAfter?: number; times: number }

export class FakeSlack {
  readonly calls: ApiCall[] = [];
  readonly messages: SlackMessage[] = [];
  readonly uploads = new Map<string, { filename: string; bytes?: Uint8Array }>();  // file id -> upload
  private readonly server = createServer((req, res) => void this.handle(req, res));
  private readonly files = new Map<string, { bytes: Uint8Array; mimetype: string; denied: boolean }>();
  /** File downloads served by the files host (sign-in pages included). */
  fileDownloads = 0;
  private readonly failures: Failure[] = [];
  private readonly conditions = new Conditions('fake Slack');
  private counter = 0;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Set<WebSocket>();
  /** Envelope ids the Socket Mode client acknowledged. */
  readonly acks: string[] = [];
  port = 0;

  static async start(): Promise<FakeSlack> {
    const fake = new FakeSlack();
    fake.server.on('upgrade', (req, socket, head) => fake.wss.handleUpgrade(req, socket, head, (ws) => fake.onSocket(ws)));
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.port = (fake.server.address() as AddressInfo).port;
    return fake;
  }

  /** The value for Bolt's `clientOptions.slackApiUrl` (and SLACK_API_URL). */
  get apiUrl(): string { return `http://127.0.0.1:${this.port}/api/`; }
  /** The host to allow for file downloads (SLACK_FILE_HOSTS). */
  get filesHost(): string { return `127.0.0.1:${this.port}`; }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Makes the next `times` calls of a Web API method answer `status` (429 with a Retry-After in seconds). */
  fail(method: string, status: number, opts: { retryAfter?: number; times?: number } = {}): void {
    this.failures.push({ method, status, retryAfter: opts.retryAfter, times: opts.times ?? 1 });
  }

  /** Serves bytes on the files host and returns the file object Slack puts in events. */
  /** `denied` serves the sign-in page even with the bot token, as for a file the app cannot see. */
  file(name: string, bytes: Uint8Array, mimetype: string, opts: { size?: number; width?: number; height?: number; denied?: boolean } = {}) {
    const id = `F${String(++this.counter).padStart(8, '0')}`;
    const url = `http://${this.filesHost}/files-pri/${TEAM_ID}-${id}/${name}`;
    this.files.set(new URL(url).pathname, { bytes, mimetype, denied: opts.denied ?? false });
    return { id, name, title: name, mimetype, filetype: name.split('.').pop(), size: opts.size ?? bytes.length,
      url_private: url, url_private_download: `${url}?download=1`, original_w: opts.width, original_h: opts.height };
  }

  /** Resolves when `predicate` holds, checked after every Web API call; rejects after `timeoutMs`. */
  until<T>(predicate: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
    return this.conditions.until(predicate, timeoutMs);
  }

  /** An Events API envelope around `event`, as Slack posts it. */
  envelope(event: Record<string, unknown>, eventId = `Ev${String(++this.counter).padStart(8, '0')}`) {
    return { token: 'deprecated', team_id: TEAM_ID, api_app_id: 'AFAKE0001', type: 'event_callback', event_id: eventId,
      event_time: Math.floor(Date.now() / 1000), event: { event_ts: event.ts, ...event },
      authorizations: [{ team_id: TEAM_ID, user_id: BOT_USER_ID, is_bot: true, is_enterprise_install: false }] };
  }

  /** Resolves once a Socket Mode client is connected (and greeted with "hello"). */
  socketConnected(timeoutMs = 20_000): Promise<void> {
    return this.until(() => this.sockets.size > 0, timeoutMs).then(() => undefined);
  }

  /** Delivers an Events API envelope over Socket Mode, as Slack does; returns its envelope id. */
  pushEvent(envelope: ReturnType<FakeSlack['envelope']>): string {
    const envelopeId = `env-${++this.counter}`;
    const frame = JSON.stringify({ envelope_id: envelopeId, type: 'events_api', payload: envelope, accepts_response_payload: false, retry_attempt: 0, retry_reason: '' });
    for (const ws of this.sockets) ws.send(frame);
    return envelopeId;
  }

  private onSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('message', (raw) => {
      const frame = JSON.parse(String(raw));
      if (frame.envelope_id) this.acks.push(frame.envelope_id);
      this.conditions.changed();
    });
    ws.send(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'fake' }, connection_info: { app_id: 'AFAKE0001' } }));
    this.conditions.changed();
  }

  /** A fresh message timestamp, unique within the fake. */
  ts(): string { return `${Math.floor(Date.now() / 1000)}.${String(++this.counter).padStart(6, '0')}`; }

  // ---- Web API ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const raw = await readBody(req);
    if (url.pathname.startsWith('/files-pri/')) return this.serveFile(req, url.pathname, res);
    if (url.pathname.startsWith('/upload/')) return this.receiveUpload(req, url.pathname.slice('/upload/'.length), raw, res);
    const method = url.pathname.replace(/^\/api\//, '');
    const { args, files } = await parseArgs(req, raw);
    const call: ApiCall = { method, args, files, status: 200, at: Date.now() };
    this.calls.push(call);
    const failure = this.failures.find((f) => f.times > 0 && f.method === method);
    if (failure) {
      failure.times--;
      call.status = failure.status;
      res.writeHead(failure.status, failure.status === 429 ? { 'retry-after': String(failure.retryAfter ?? 1) } : {}).end();
    } else if (!authorised(method, req.headers.authorization ?? `Bearer ${args.token}`)) {
      json(res, { ok: false, error: 'invalid_auth' });
    } else {
      json(res, this.answer(method, args));
    }
    this.conditions.changed();
  }

  private answer(method: string, args: Record<string, any>): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://fake.slack/', team: 'fake', user: 'omg', team_id: TEAM_ID, user_id: BOT_USER_ID, bot_id: 'BFAKE0001' };
      case 'chat.postMessage': {
        const message: SlackMessage = { channel: args.channel, ts: this.ts(), thread_ts: args.thread_ts, text: args.text ?? '',
          blocks: parseJson(args.blocks), updates: 0, files: [] };
        this.messages.push(message);
        return { ok: true, channel: message.channel, ts: message.ts, message: { type: 'message', user: BOT_USER_ID, text: message.text, ts: message.ts } };
      }
      case 'chat.postEphemeral':
        return { ok: true, message_ts: this.ts() };
      case 'chat.update': {
        const message = this.messages.find((m) => m.channel === args.channel && m.ts === args.ts);
        if (!message) return { ok: false, error: 'message_not_found' };
        message.text = args.text ?? message.text;
        message.blocks = parseJson(args.blocks) ?? message.blocks;
        message.updates++;
        return { ok: true, channel: message.channel, ts: message.ts, text: message.text };
      }
      case 'files.getUploadURLExternal': {
        const id = `F${String(++this.counter).padStart(8, '0')}`;
        this.uploads.set(id, { filename: args.filename });
        return { ok: true, upload_url: `http://127.0.0.1:${this.port}/upload/${id}`, file_id: id };
      }
      case 'files.completeUploadExternal': {
        const files: { id: string; title?: string }[] = parseJson(args.files) ?? [];
        if (files.some((f) => !this.uploads.get(f.id)?.bytes)) return { ok: false, error: 'file_not_uploaded' };
        const shared: SlackMessage = { channel: args.channel_id, ts: this.ts(), thread_ts: args.thread_ts, text: args.initial_comment ?? '',
          updates: 0, files: files.map((f) => f.id) };
        this.messages.push(shared);
        return { ok: true, files: files.map((f) => ({ id: f.id, title: f.title ?? this.uploads.get(f.id)!.filename })) };
      }
      case 'apps.connections.open':
        return { ok: true, url: `ws://127.0.0.1:${this.port}/socket` };
      default:
        return { ok: false, error: 'unknown_method' };
    }
  }

  private async receiveUpload(req: IncomingMessage, id: string, raw: Buffer, res: ServerResponse): Promise<void> {
    const upload = this.uploads.get(id);
    if (!upload) { res.writeHead(404).end(); return; }
    const { files } = await parseArgs(req, raw);
    upload.bytes = files[0]?.bytes ?? new Uint8Array(raw);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`OK - ${upload.bytes.length}`);
  }

  private serveFile(req: IncomingMessage, path: string, res: ServerResponse): void {
    const file = this.files.get(path);
    if (!file) { res.writeHead(404).end(); return; }
    this.fileDownloads++;
    // Without access Slack answers its HTML sign-in page with status 200, not an error.
    if (file.denied || req.headers.authorization !== `Bearer ${BOT_TOKEN}`) {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><body>Sign in to Slack</body></html>');
      return;
    }
    res.writeHead(200, { 'content-type': file.mimetype, 'content-length': file.bytes.length }).end(file.bytes);
  }
}

/** POSTs a body to Bolt's receiver with Slack's v0 signature (a wrong secret makes a bad signature). */
export async function postSigned(url: string, body: string, opts: { contentType?: string; retryNum?: number; secret?: string; timestamp?: number } = {}) {
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const signature = `v0=${createHmac('sha256', opts.secret ?? SIGNING_SECRET).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  const headers: Record<string, string> = {
    'content-type': opts.contentType ?? 'application/json',
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': signature,
  };
  if (opts.retryNum !== undefined) Object.assign(headers, { 'x-slack-retry-num': String(opts.retryNum), 'x-slack-retry-reason': 'http_timeout' });
  return fetch(url, { method: 'POST', headers, body });
}

/** The form body Slack posts for a slash command. */
export function slashCommandBody(command: string, text: string, user: string, channel = CHANNEL, triggerId = `T${Date.now()}`): string {
  return new URLSearchParams({ token: 'deprecated', team_id: TEAM_ID, channel_id: channel, channel_name: 'general', user_id: user,
    user_name: user, command, text, api_app_id: 'AFAKE0001', response_url: 'http://127.0.0.1:9/unused', trigger_id: triggerId }).toString();
}

// apps.connections.open takes the app-level token; every other method the bot token.
function authorised(method: string, authorization: string): boolean {
  return authorization === `Bearer ${method === 'apps.connections.open' ? APP_TOKEN : BOT_TOKEN}`;
}

function json(res: ServerResponse, body: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function parseJson(value: unknown): any {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Web API arguments arrive form-encoded, as JSON, or as multipart when they carry binary data. */
async function parseArgs(req: IncomingMessage, raw: Buffer): Promise<{ args: Record<string, any>; files: ApiCall['files'] }> {
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('multipart/form-data')) {
    const form = await new Response(new Uint8Array(raw), { headers: { 'content-type': type } }).formData();
    const args: Record<string, any> = {};
    const files: ApiCall['files'] = [];
    for (const [key, value] of form.entries()) {
      if (typeof value === 'string') args[key] = value;
      else files.push({ name: value.name, bytes: new Uint8Array(await value.arrayBuffer()) });
    }
    return { args, files };
  }
  if (type.includes('json')) return { args: raw.length ? JSON.parse(raw.toString('utf8')) : {}, files: [] };
  return { args: Object.fromEntries(new URLSearchParams(raw.toString('utf8'))), files: [] };
}
