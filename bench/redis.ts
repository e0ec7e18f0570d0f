// A throwaway loopback Redis for the BullMQ measurements: started as our own child process on the first free port
// from 6391, no persistence, stopped (by its pid) when the bench ends.
import { spawn, type ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';

export interface LocalRedis { url: string; stop(): Promise<void> }

async function answers(url: string): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export async function startRedis(firstPort = 6391): Promise<LocalRedis> {
  for (let port = firstPort; port < firstPort + 10; port++) {
    const url = `redis://127.0.0.1:${port}`;
    if (await answers(url)) continue; // someone else's
    const child: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    for (let i = 0; i < 50 && child.exitCode === null; i++) {
      if (await answers(url)) {
        return {
          url,
          stop: () => new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
          }),
        };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGTERM');
  }
  throw new Error(`could not start redis-server on a port from ${firstPort}`);
}
