// The playground's static page: three files read once at start-up and served from memory (no build step, no
// directory listing, nothing but these names reachable).
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const publicDir = new URL('./public/', import.meta.url);

const files = [
  { route: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { route: '/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { route: '/style.css', file: 'style.css', type: 'text/css; charset=utf-8' },
] as const;

export function registerStatic(app: FastifyInstance): void {
  for (const { route, file, type } of files) {
    const body = readFileSync(new URL(file, publicDir));
    app.get(route, (_req, reply) => reply.type(type).header('cache-control', 'no-cache').send(body));
  }
}
