// A loopback stand-in for Discord: the REST API (under /api/v10), the gateway (a WebSocket at /gateway) and a
// CDN (/attachments/...). discord.js is pointed at it with `rest: { api }`; it finds the gateway through the fake
// GET /gateway/bot, exactly as it does against Discord. Tests push MESSAGE_CREATE / INTERACTION_CREATE through the
// gateway and read back the REST calls the bot made.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { Conditions } from './conditions.js';

export interface RecordedFile { field: string; name: string; contentType: string; bytes: Uint8Array }
export interface RestCall { method: string; path: string; body: any; files: RecordedFile[]; status: number; at: number }
interface Failure { method: string; path: RegExp; status: number; retryAfter?: number; afterHandling?: boolean; times: number }

export const BOT_ID = '100000000000000001';
export const GUILD_ID = '200000000000000001';
export const CHANNEL_ID = '300000000000000001';
export const ROLE_ID = '400000000000000001';

const snowflakes = (() => { let n = 500000000000000000n; return () => String(n++); })();
const now = () => new Date().toISOString();

export function user(id: string, name = `user${id.slice(-3)}`, bot = false) {
  return { id, username: name, global_name: name, discriminator: '0', avatar: null, bot };
}
const botUser = user(BOT_ID, 'omg-llava', true);

function textChannel(id: string, name: string) {
  return { id, type: 0, guild_id: GUILD_ID, name, position: 0, permission_overwrites: [], nsfw: false, parent_id: null, topic: null, last_message_id: null, rate_limit_per_user: 0 };
}

export class FakeDiscord {
  readonly calls: RestCall[] = [];
  private readonly server = createServer((req, res) => void this.handle(req, res));
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Set<WebSocket>();
  private readonly messages = new Map<string, any>();   // message id -> payload, every channel
  private readonly nonces = new Map<string, string>();   // channel:nonce -> message id (enforce_nonce dedupe)
  private readonly files = new Map<string, { bytes: Uint8Array; contentType: string }>();
  private readonly failures: Failure[] = [];
  private readonly channels = new Map<string, any>([[CHANNEL_ID, textChannel(CHANNEL_ID, 'general')]]);
  private readonly conditions = new Conditions('fake Discord');
  private seq = 0;
  /** Attachment downloads served by the fake CDN. */
  cdnDownloads = 0;
  port = 0;

  /** Starts the fake on 127.0.0.1 with an ephemeral port. */
  static async start(): Promise<FakeDiscord> {
    const fake = new FakeDiscord();
    fake.server.on('upgrade', (req, socket, head) => fake.wss.handleUpgrade(req, socket, head, (ws) => fake.onSocket(ws)));
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    fake.port = (fake.server.address() as AddressInfo).port;
    return fake;
  }

  /** The value for discord.js `rest.api` (and DISCORD_API_URL). */
  get apiUrl(): string { return `http://127.0.0.1:${this.port}/api`; }
  /** The host to allow for attachment downloads (DISCORD_CDN_HOSTS). */
  get cdnHost(): string { return `127.0.0.1:${this.port}`; }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Makes the next `times` calls matching method+path answer `status` (429 carries retry_after seconds).
   *  With afterHandling the call takes effect first and only then fails, as a 5xx after a commit would. */
  fail(method: string, path: RegExp, status: number, opts: { retryAfter?: number; afterHandling?: boolean; times?: number } = {}): void {
    this.failures.push({ method, path, status, retryAfter: opts.retryAfter, afterHandling: opts.afterHandling, times: opts.times ?? 1 });
  }

  // ---- test-side helpers to build platform data ----

  /** Serves bytes on the fake CDN and returns the attachment object Discord would send. */
  attachment(name: string, bytes: Uint8Array, contentType: string, size: { width?: number; height?: number; bytes?: number } = {}) {
    const id = snowflakes();
    const path = `/attachments/${CHANNEL_ID}/${id}/${name}`;
    this.files.set(path, { bytes, contentType });
    const url = `http://${this.cdnHost}${path}`;
    return { id, filename: name, content_type: contentType, size: size.bytes ?? bytes.length, url, proxy_url: url, width: size.width, height: size.height };
  }

  /** Serves a redirect on the fake CDN (downloads must refuse it). */
  redirectAttachment(name: string, to: string, contentType = 'image/png') {
    const id = snowflakes();
    const path = `/attachments/${CHANNEL_ID}/${id}/${name}`;
    this.files.set(path, { bytes: new TextEncoder().encode(to), contentType: 'redirect' });
    const url = `http://${this.cdnHost}${path}`;
    return { id, filename: name, content_type: contentType, size: 100, url, proxy_url: url, width: 10, height: 10 };
  }

  /** Dispatches MESSAGE_CREATE for a user message in a guild channel (or a DM when `dm` is set). */
  sendMessage(opts: { author: ReturnType<typeof user>; content: string; channelId?: string; attachments?: any[]; mentionBot?: boolean;
    replyTo?: string; roles?: string[]; dm?: boolean; guildId?: string }): any {
    const channelId = opts.channelId ?? CHANNEL_ID;
    const ref = opts.replyTo ? this.messages.get(opts.replyTo) : undefined;
    const message = {
      ...this.messagePayload(channelId, opts.author, opts.content, opts.attachments ?? []),
      type: ref ? 19 : 0,
      channel_type: opts.dm ? 1 : (this.channels.get(channelId)?.type ?? 0), // Discord sends it; discord.js needs it for DMs
      mentions: opts.mentionBot ? [botUser] : [],
      ...(ref ? { message_reference: { type: 0, message_id: ref.id, channel_id: ref.channel_id, guild_id: ref.guild_id }, referenced_message: ref } : {}),
      ...(opts.dm ? {} : { guild_id: opts.guildId ?? GUILD_ID, member: { roles: opts.roles ?? [], joined_at: now(), deaf: false, mute: false, flags: 0 } }),
    };
    if (opts.dm) delete (message as any).guild_id;
    this.messages.set(message.id, message);
    this.dispatch('MESSAGE_CREATE', message);
    return message;
  }

  /** A thread that a user opened in the default channel (THREAD_CREATE); returns its id. */
  userThread(owner: ReturnType<typeof user>, name: string): string {
    const thread = this.threadPayload(CHANNEL_ID, snowflakes(), name, owner.id);
    this.channels.set(thread.id, thread);
    this.dispatch('THREAD_CREATE', { ...thread, newly_created: true });
    return thread.id;
  }

  /** Dispatches INTERACTION_CREATE for a slash command; options follow Discord's shape. */
  slashCommand(opts: { author: ReturnType<typeof user>; name: string; options?: any[]; attachments?: any[]; id?: string; roles?: string[]; channelId?: string }): any {
    const attachments = Object.fromEntries((opts.attachments ?? []).map((a) => [a.id, a]));
    return this.interaction(opts, { type: 2, data: { id: snowflakes(), name: opts.name, type: 1, options: opts.options ?? [], resolved: { attachments } } });
  }

  /** Dispatches INTERACTION_CREATE for autocomplete of a command's focused string option. */
  autocomplete(opts: { author: ReturnType<typeof user>; name: string; option: string; typed: string; channelId?: string }): any {
    return this.interaction(opts, { type: 4, data: { id: snowflakes(), name: opts.name, type: 1,
      options: [{ name: opts.option, type: 3, value: opts.typed, focused: true }] } });
  }

  /** Dispatches INTERACTION_CREATE for a button press on a bot message. */
  buttonPress(opts: { author: ReturnType<typeof user>; messageId: string; customId: string; id?: string; roles?: string[] }): any {
    const message = this.messages.get(opts.messageId);
    return this.interaction({ ...opts, channelId: message.channel_id }, { type: 3, message, data: { custom_id: opts.customId, component_type: 2 } });
  }

  private interaction(opts: { author: ReturnType<typeof user>; id?: string; roles?: string[]; channelId?: string }, body: object): any {
    const channelId = opts.channelId ?? CHANNEL_ID;
    const interaction = {
      id: opts.id ?? snowflakes(), application_id: BOT_ID, token: `itoken-${snowflakes()}`, version: 1,
      guild_id: GUILD_ID, channel_id: channelId, channel: this.channels.get(channelId),
      member: { user: opts.author, roles: opts.roles ?? [], permissions: '0', joined_at: now(), deaf: false, mute: false, flags: 0 },
      app_permissions: '0', locale: 'en-US', guild_locale: 'en-US', entitlements: [], authorizing_integration_owners: { 0: GUILD_ID }, context: 0,
      ...body,
    };
    this.interactionChannels.set(interaction.token, channelId);
    this.interactionIds.set(interaction.token, interaction.id);
    this.dispatch('INTERACTION_CREATE', interaction);
    return interaction;
  }

  /** Sends one dispatch to every connected client. */
  dispatch(t: string, d: unknown): void {
    const frame = JSON.stringify({ op: 0, t, s: ++this.seq, d });
    for (const ws of this.sockets) ws.send(frame);
  }

  /** Messages the bot posted (or edited into) a channel, in order of creation. */
  botMessages(channelId?: string): any[] {
    return [...this.messages.values()].filter((m) => m.author.id === BOT_ID && (!channelId || m.channel_id === channelId));
  }

  message(id: string): any { return this.messages.get(id); }

  /** Resolves when `predicate` holds, checked after every REST call; rejects after `timeoutMs`. */
  until<T>(predicate: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
    return this.conditions.until(predicate, timeoutMs);
  }

  // ---- gateway ----

  private onSocket(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: 40_000 } }));
    ws.on('message', (raw) => {
      const frame = JSON.parse(String(raw));
      if (frame.op === 1) ws.send(JSON.stringify({ op: 11 }));
      if (frame.op === 2) this.onIdentify(ws);
    });
  }

  private onIdentify(ws: WebSocket): void {
    const ready = { v: 10, user: botUser, guilds: [{ id: GUILD_ID, unavailable: true }], session_id: 'fake-session',
      resume_gateway_url: `ws://127.0.0.1:${this.port}/gateway`, application: { id: BOT_ID, flags: 0 }, private_channels: [], relationships: [] };
    ws.send(JSON.stringify({ op: 0, t: 'READY', s: ++this.seq, d: ready }));
    const guild = {
      id: GUILD_ID, name: 'fake guild', icon: null, owner_id: '999', afk_timeout: 300, verification_level: 0, default_message_notifications: 0,
      explicit_content_filter: 0, features: [], mfa_level: 0, system_channel_flags: 0, premium_tier: 0, preferred_locale: 'en-US', nsfw_level: 0,
      roles: [{ id: GUILD_ID, name: '@everyone', color: 0, hoist: false, position: 0, permissions: '1024', managed: false, mentionable: false, flags: 0 },
        { id: ROLE_ID, name: 'omg-users', color: 0, hoist: false, position: 1, permissions: '1024', managed: false, mentionable: false, flags: 0 }],
      emojis: [], stickers: [], joined_at: now(), large: false, unavailable: false, member_count: 2,
      members: [{ user: botUser, roles: [], joined_at: now(), deaf: false, mute: false, flags: 0 }],
      channels: [...this.channels.values()], threads: [], presences: [], voice_states: [], stage_instances: [], guild_scheduled_events: [],
    };
    ws.send(JSON.stringify({ op: 0, t: 'GUILD_CREATE', s: ++this.seq, d: guild }));
  }

  // ---- REST ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const raw = await readBody(req);
    if (url.pathname.startsWith('/attachments/')) return this.serveFile(url.pathname, res);
    const path = decodeURIComponent(url.pathname).replace(/^\/api\/v\d+/, '');
    const method = req.method ?? 'GET';
    const { body, files } = await parseBody(req, raw);
    const call: RestCall = { method, path, body, files, status: 0, at: Date.now() };
    this.calls.push(call);
    const failure = this.failures.find((f) => f.times > 0 && f.method === method && f.path.test(path));
    if (failure) failure.times--;
    if (failure && !failure.afterHandling) return this.answerFailure(call, res, failure);
    const [status, answer] = this.route(method, path, body, files, url);
    if (failure) return this.answerFailure(call, res, failure);
    call.status = status;
    if (status === 204) res.writeHead(204).end();
    else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    this.conditions.changed();
  }

  private answerFailure(call: RestCall, res: ServerResponse, failure: Failure): void {
    call.status = failure.status;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (failure.status === 429) Object.assign(headers, { 'retry-after': String(failure.retryAfter ?? 1), 'x-ratelimit-scope': 'user' });
    res.writeHead(failure.status, headers).end(JSON.stringify(failure.status === 429
      ? { message: 'You are being rate limited.', retry_after: failure.retryAfter ?? 1, global: false }
      : { message: 'Internal Server Error', code: 0 }));
    this.conditions.changed();
  }

  private route(method: string, path: string, body: any, files: RecordedFile[], url: URL): [number, unknown] {
    let m: RegExpMatchArray | null;
    if (method === 'GET' && path === '/gateway/bot') {
      return [200, { url: `ws://127.0.0.1:${this.port}/gateway`, shards: 1, session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 } }];
    }
    if (method === 'PUT' && /^\/applications\/\d+(\/guilds\/\d+)?\/commands$/.test(path)) {
      return [200, (body as any[]).map((c) => ({ id: snowflakes(), application_id: BOT_ID, version: '1', default_member_permissions: null, type: 1, ...c }))];
    }
    if (method === 'POST' && (m = path.match(/^\/channels\/(\d+)\/typing$/))) return [204, null];
    if (method === 'POST' && (m = path.match(/^\/channels\/(\d+)\/messages\/(\d+)\/threads$/))) return [201, this.createThread(m[1]!, m[2]!, body)];
    if (method === 'GET' && (m = path.match(/^\/channels\/(\d+)\/messages\/(\d+)$/))) {
      const found = this.messages.get(m[2]!);
      return found ? [200, found] : [404, { message: 'Unknown Message', code: 10008 }];
    }
    if (method === 'GET' && (m = path.match(/^\/channels\/(\d+)\/messages$/))) {
      const limit = Number(url.searchParams.get('limit') ?? 50);
      return [200, [...this.messages.values()].filter((x) => x.channel_id === m![1]).reverse().slice(0, limit)];
    }
    if (method === 'POST' && (m = path.match(/^\/channels\/(\d+)\/messages$/))) return [200, this.createMessage(m[1]!, body, files)];
    if (method === 'PATCH' && (m = path.match(/^\/channels\/(\d+)\/messages\/(\d+)$/))) return this.editMessage(m[2]!, body, files);
    if (method === 'POST' && (m = path.match(/^\/interactions\/(\d+)\/([^/]+)\/callback$/))) {
      const message = this.interactionCallback(m[2]!, body, files);
      // with_response=true answers the callback resource; otherwise Discord answers 204.
      return url.searchParams.get('with_response') === 'true'
        ? [200, { interaction: { id: m[1], type: 2, response_message_id: message?.id }, resource: { type: body.type, message } }]
        : [204, null];
    }
    if (method === 'PATCH' && (m = path.match(/^\/webhooks\/\d+\/([^/]+)\/messages\/@original$/))) {
      const id = this.originals.get(m[1]!);
      return id ? this.editMessage(id, body, files) : [404, { message: 'Unknown Message', code: 10008 }];
    }
    if (method === 'POST' && (m = path.match(/^\/webhooks\/\d+\/([^/]+)$/))) {
      const channelId = this.interactionChannels.get(m[1]!) ?? CHANNEL_ID;
      const message = this.createMessage(channelId, body, files);
      message.interaction_metadata = { id: this.interactionIds.get(m[1]!), type: 2, user: botUser, authorizing_integration_owners: {} };
      return [200, message];
    }
    if (method === 'GET' && (m = path.match(/^\/channels\/(\d+)$/))) {
      const channel = this.channels.get(m[1]!);
      return channel ? [200, channel] : [404, { message: 'Unknown Channel', code: 10003 }];
    }
    return [404, { message: `fake Discord has no route ${method} ${path}`, code: 0 }];
  }

  private readonly originals = new Map<string, string>();            // interaction token -> original response message id
  private readonly interactionChannels = new Map<string, string>();  // interaction token -> channel id
  private readonly interactionIds = new Map<string, string>();       // interaction token -> interaction id

  private interactionCallback(token: string, body: any, files: RecordedFile[]): any {
    const channelId = this.interactionChannels.get(token) ?? CHANNEL_ID;
    // 4 = reply, 5 = deferred reply: both create the original response message; 6/7 act on the button's message.
    if (body.type !== 4 && body.type !== 5) return null;
    const message = this.createMessage(channelId, body.data ?? {}, files, body.type === 5 ? 128 : 0);
    message.interaction_metadata = { id: this.interactionIds.get(token), type: 2, user: botUser, authorizing_integration_owners: {} };
    this.originals.set(token, message.id);
    return message;
  }

  private createThread(channelId: string, messageId: string, body: any) {
    // Discord gives a thread started from a message the message's id.
    const thread = this.threadPayload(channelId, messageId, body.name, BOT_ID);
    this.channels.set(thread.id, thread);
    this.dispatch('THREAD_CREATE', { ...thread, newly_created: true });
    return thread;
  }

  private threadPayload(parentId: string, id: string, name: string, ownerId: string) {
    return { ...textChannel(id, name), type: 11, parent_id: parentId, owner_id: ownerId,
      thread_metadata: { archived: false, auto_archive_duration: 1440, archive_timestamp: now(), locked: false },
      message_count: 0, member_count: 1 };
  }

  private createMessage(channelId: string, body: any, files: RecordedFile[], flags = 0) {
    const nonceKey = body.enforce_nonce && body.nonce ? `${channelId}:${body.nonce}` : null;
    if (nonceKey && this.nonces.has(nonceKey)) return this.messages.get(this.nonces.get(nonceKey)!);
    const attachments = files.map((f, i) => ({ id: snowflakes(), filename: f.name, size: f.bytes.length, content_type: f.contentType,
      url: `http://${this.cdnHost}/attachments/${channelId}/${i}/${f.name}`, proxy_url: '' }));
    const message = { ...this.messagePayload(channelId, botUser, body.content ?? '', attachments), flags: body.flags ?? flags,
      components: body.components ?? [], embeds: body.embeds ?? [], nonce: body.nonce,
      ...(body.message_reference ? { message_reference: body.message_reference, type: 19, referenced_message: this.messages.get(body.message_reference.message_id) ?? null } : {}) };
    this.messages.set(message.id, message);
    if (nonceKey) this.nonces.set(nonceKey, message.id);
    return message;
  }

  private editMessage(id: string, body: any, files: RecordedFile[]): [number, unknown] {
    const message = this.messages.get(id);
    if (!message) return [404, { message: 'Unknown Message', code: 10008 }];
    if (body.content !== undefined) message.content = body.content;
    if (body.components !== undefined) message.components = body.components;
    if (body.flags !== undefined) message.flags = body.flags;
    // Kept attachments are listed by id; new files are appended (discord.js sends both).
    if (body.attachments !== undefined || files.length > 0) {
      const kept = (body.attachments ?? []).filter((a: any) => message.attachments.some((b: any) => b.id === a.id));
      message.attachments = [...message.attachments.filter((b: any) => kept.some((a: any) => a.id === b.id)),
        ...files.map((f) => ({ id: snowflakes(), filename: f.name, size: f.bytes.length, content_type: f.contentType, url: '', proxy_url: '' }))];
    }
    message.edited_timestamp = now();
    return [200, message];
  }

  private messagePayload(channelId: string, author: ReturnType<typeof user>, content: string, attachments: any[]) {
    const channel = this.channels.get(channelId);
    return { id: snowflakes(), channel_id: channelId, author, content, timestamp: now(), edited_timestamp: null, tts: false,
      mention_everyone: false, mentions: [] as any[], mention_roles: [], attachments, embeds: [], pinned: false, type: 0, flags: 0,
      components: [], ...(channel ? { guild_id: channel.guild_id } : {}) };
  }

  private serveFile(path: string, res: ServerResponse): void {
    const file = this.files.get(path);
    if (!file) { res.writeHead(404).end(); return; }
    this.cdnDownloads++;
    if (file.contentType === 'redirect') { res.writeHead(302, { location: new TextDecoder().decode(file.bytes) }).end(); return; }
    res.writeHead(200, { 'content-type': file.contentType, 'content-length': file.bytes.length }).end(file.bytes);
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** JSON bodies as they are; multipart bodies (attachments) as payload_json + files, parsed by undici's FormData. */
async function parseBody(req: IncomingMessage, raw: Buffer): Promise<{ body: any; files: RecordedFile[] }> {
  const type = req.headers['content-type'] ?? '';
  if (type.startsWith('multipart/form-data')) {
    const form = await new Response(new Uint8Array(raw), { headers: { 'content-type': type } }).formData();
    const files: RecordedFile[] = [];
    let body: any = {};
    for (const [field, value] of form.entries()) {
      if (typeof value === 'string') { if (field === 'payload_json') body = JSON.parse(value); continue; }
      files.push({ field, name: value.name, contentType: value.type, bytes: new Uint8Array(await value.arrayBuffer()) });
    }
    return { body, files };
  }
  return { body: raw.length > 0 && type.includes('json') ? JSON.parse(raw.toString('utf8')) : null, files: [] };
}
