// Child processes the fault and load tests start and stop themselves: model workers and a private redis-server.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const tinyBundle = fileURLToPath(new URL('../fixtures/tiny-random', import.meta.url));

export interface Child {
  process: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** Resolves once the output contains `text`; rejects if the process exits first or after timeoutMs. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
}

function track(child: ChildProcess): Child {
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    process: child,
    output: () => output,
    exited,
    async waitFor(text, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!output.includes(text)) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited before "${text}":\n${output}`);
        if (Date.now() > deadline) throw new Error(`no "${text}" within ${timeoutMs} ms:\n${output}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

/** A model worker (fixtures/model-worker.ts) on the tiny-random bundle; resolves once it serves. */
export async function startModelWorker(env: Record<string, string>): Promise<Child> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/reliability/fixtures/model-worker.ts'], {
    cwd: root,
    env: { ...process.env, MODEL_DIR: tinyBundle, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const worker = track(child);
  await worker.waitFor('ready');
  return worker;
}

/** Any node entry point of the repository, e.g. src/queue/worker-main.ts, with the given environment. */
export function startEntry(entry: string, env: Record<string, string>, args: string[] = []): Child {
  return track(spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** A loopback port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A loopback redis-server that writes every command to its append-only file, so a restart keeps accepted jobs. */
export async function startRedis(port: number, dir: string): Promise<Child> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const server = track(child);
  await server.waitFor('Ready to accept connections', 10_000);
  return server;
}

export async function stop(child: Child | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!child || child.process.exitCode !== null || child.process.signalCode !== null) return;
  child.process.kill(signal);
  await child.exited;
}

/** Empties one Redis database (the fault tests use their own database numbers, as the service uses fixed key prefixes). */
export async function flush(url: string): Promise<void> {
  const redis = new Redis(url);
  await redis.flushdb();
  await redis.quit();
}
