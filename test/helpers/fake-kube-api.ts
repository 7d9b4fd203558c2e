import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** One request and the API server's answer to it, as recorded in test/fixtures/kubernetes/. */
export interface KubeExchange {
  request: { method: string; path: string };
  response: { status: number; headers?: Record<string, string>; body: unknown };
}

/** A request the backend made, as the server saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: unknown;
}

const FIXTURES = fileURLToPath(new URL('../fixtures/kubernetes/', import.meta.url));

/**
 * The named exchanges of a fixture file, with `$WORK` (the shared folder the recording used) replaced by this test's
 * folder, so the replayed objects name the paths the backend really sent.
 */
export function readExchanges(file: string, work: string): Record<string, KubeExchange> {
  const text = readFileSync(path.join(FIXTURES, file), 'utf8').replaceAll('$WORK', work);
  const { _about: _, ...exchanges } = JSON.parse(text) as Record<string, KubeExchange> & { _about?: string };
  return exchanges;
}

/**
 * A Kubernetes API server that replays a script of recorded exchanges in order: each request must be the next one
 * the script expects (method and path), else it is answered 418 and listed in `unexpected`. Every request is kept
 * in `seen`, so a test asserts what the backend sent as well as what it made of the answers.
 */
export class FakeKubeApi {
  readonly seen: SeenRequest[] = [];
  readonly unexpected: string[] = [];
  private script: KubeExchange[] = [];
  private server?: Server;
  url = '';

  /** Queues exchanges to be replayed, in order. */
  play(...exchanges: KubeExchange[]): void {
    this.script.push(...exchanges);
  }

  /** The exchanges queued but not requested (`METHOD path`). */
  get unplayed(): string[] {
    return this.script.map((e) => `${e.request.method} ${e.request.path}`);
  }

  /** Forgets the script and what was seen (between tests). */
  reset(): void {
    this.script = [];
    this.seen.length = 0;
    this.unexpected.length = 0;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://fake');
        const text = Buffer.concat(chunks).toString('utf8');
        const method = req.method ?? 'GET';
        this.seen.push({
          method,
          path: url.pathname,
          query: url.searchParams,
          headers: req.headers,
          body: text ? JSON.parse(text) : undefined,
        });
        const next = this.script[0];
        if (!next || next.request.method !== method || next.request.path !== url.pathname) {
          this.unexpected.push(`${method} ${url.pathname} (expected ${next ? this.unplayed[0] : 'nothing'})`);
          res.writeHead(418, { 'content-type': 'application/json' }).end('{"kind":"Status","message":"unexpected"}');
          return;
        }
        this.script.shift();
        const { status, headers = {}, body } = next.response;
        const isText = typeof body === 'string';
        res
          .writeHead(status, { 'content-type': isText ? 'text/plain' : 'application/json', ...headers })
          .end(isText ? body : JSON.stringify(body));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /**
   * A kubeconfig file that points at this server with a bearer token, as a worker's KUBECONFIG would. The server is
   * plain http, which the client accepts only with `insecure-skip-tls-verify` (as for `kubectl proxy`).
   */
  writeKubeconfig(dir: string, options: { token?: string; skipTlsVerify?: boolean } = {}): string {
    const { token = 'looptool-test-token', skipTlsVerify = true } = options;
    const file = path.join(dir, 'kubeconfig.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        `- name: recorded\n  cluster:\n    server: ${this.url}\n    insecure-skip-tls-verify: ${skipTlsVerify}`,
        'users:',
        `- name: looptool-worker\n  user:\n    token: ${token}`,
        'contexts:',
        '- name: recorded\n  context:\n    cluster: recorded\n    user: looptool-worker',
        'current-context: recorded',
        '',
      ].join('\n'),
    );
    return file;
  }
}
