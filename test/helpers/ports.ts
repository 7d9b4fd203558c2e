import { createServer } from 'node:net';
import { freePort } from '../../services/ports.js';

export { freePort } from '../../services/ports.js';

async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * Ports for a Temporal dev server: the frontend port with the next few ports free too (the dev server binds its
 * internal services next to the frontend, and crashes when one is taken, e.g. by a UI port the kernel handed out
 * right after it), and a UI port away from that block.
 */
export async function freeTemporalPorts(): Promise<{ port: number; uiPort: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort();
    const block = Array.from({ length: 10 }, (_, i) => port + i);
    if (block.at(-1)! > 65_000) continue;
    if (!(await Promise.all(block.map(isFree))).every(Boolean)) continue;
    for (let tries = 0; tries < 20; tries++) {
      const uiPort = await freePort();
      if (uiPort < port - 10 || uiPort > port + 20) return { port, uiPort };
    }
  }
  throw new Error('no free block of ports for a Temporal dev server');
}
