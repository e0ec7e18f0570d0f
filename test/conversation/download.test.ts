import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadFile } from '../../src/conversation/download.js';

let server: Server;
let host: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/image') res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(100, 7));
    else if (req.url === '/moved') res.writeHead(302, { location: '/image' }).end();
    else if (req.url === '/chunked') { // no content-length: the cap must hold while reading
      res.writeHead(200, { 'content-type': 'image/png' });
      res.write(Buffer.alloc(600));
      res.end(Buffer.alloc(600));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('downloadFile', () => {
  it('fetches from an allowed host', async () => {
    const { bytes, contentType } = await downloadFile(`http://${host}/image`, { allowedHosts: [host], maxBytes: 1000 });
    expect(bytes.length).toBe(100);
    expect(contentType).toBe('image/png');
  });

  it('refuses other hosts, plain http off loopback, redirects and failures', async () => {
    const opts = { allowedHosts: [host, 'cdn.example.com'], maxBytes: 1000 };
    await expect(downloadFile(`http://127.0.0.1:1/image`, opts)).rejects.toMatchObject({ code: 'OMG_ERR_DOWNLOAD', details: { reason: 'host not allowed' } });
    await expect(downloadFile('http://cdn.example.com/image', opts)).rejects.toMatchObject({ code: 'OMG_ERR_DOWNLOAD', details: { reason: 'host not allowed' } });
    await expect(downloadFile(`http://${host}/moved`, opts)).rejects.toMatchObject({ code: 'OMG_ERR_DOWNLOAD', details: { reason: 'request failed' } });
    await expect(downloadFile(`http://${host}/missing`, opts)).rejects.toMatchObject({ code: 'OMG_ERR_DOWNLOAD', details: { reason: 'status 404' } });
  });

  it('stops at the byte cap, from the declared length or while reading', async () => {
    await expect(downloadFile(`http://${host}/image`, { allowedHosts: [host], maxBytes: 99 })).rejects.toMatchObject({ code: 'OMG_ERR_IMAGE_TOO_LARGE' });
    await expect(downloadFile(`http://${host}/chunked`, { allowedHosts: [host], maxBytes: 1000 })).rejects.toMatchObject({ code: 'OMG_ERR_IMAGE_TOO_LARGE' });
  });
});
