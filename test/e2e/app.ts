// Runs the service the way `npm start` does, as its own process on a free loopback port, and stops it again.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { createRequire } from 'node:module';

const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');

export interface RunningApp {
  url: string;
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts src/main.ts with `env` over a clean environment and waits until /healthz answers (any status). */
export async function startApp(env: Record<string, string>, timeoutMs = 90_000): Promise<RunningApp> {
  const port = await freePort();
  const child = spawn(process.execPath, [tsxCli, 'src/main.ts'], {
    // Empty values count as unset and win over a developer's .env, so no bot or Redis joins in by accident.
    env: {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn',
      REDIS_URL: '', DISCORD_TOKEN: '', SLACK_BOT_TOKEN: '', METRICS_PORT: '', WEB_ENABLED: 'true', ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const app: RunningApp = {
    url: `http://127.0.0.1:${port}`,
    process: child,
    output: () => output,
    // SIGTERM is the graceful path under test; SIGKILL only if it hangs, so a failing test never leaves a process behind.
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`the service exited with ${child.exitCode}:\n${output}`);
    const up = await fetch(`${app.url}/healthz`).then(() => true, () => false);
    if (up) return app;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  await app.stop();
  throw new Error(`the service did not answer within ${timeoutMs} ms:\n${output}`);
}
