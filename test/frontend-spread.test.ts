// Two front-end processes share keep-alive load evenly: 32 connections opened
// at once are split between them (each takes 40-60% of the connections and,
// each connection sending as many requests as the others, of the requests),
// counted by the pid that answered each request on each connection, once
// both processes are warm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { startSluice, request, sleep, tempDir, APPS } from './helpers/sluice.js';

const APP = path.join(APPS, 'at-app.ts');
const CONNECTIONS = 32;
const REQUESTS_PER_CONNECTION = 40;

/** Who answered: the pid, and the connection (socket) it came on. */
interface Answer {
  pid: number;
  socket: object;
}

/**
 * One client sending `n` requests for /pid one after another on a keep-alive
 * connection (a new one if the server closed it: a busy process may hand
 * connections on to a sibling).
 */
async function connection(url: string, n: number): Promise<Answer[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const answers: Answer[] = [];
  try {
    for (let i = 0; i < n; i++) {
      answers.push(
        await new Promise<Answer>((resolve, reject) => {
          const req = http.get(`${url}/pid`, { agent }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve({ pid: Number(body), socket: req.socket! }));
          });
          req.on('error', reject);
        }),
      );
    }
  } finally {
    agent.destroy();
  }
  return answers;
}

test('two front-end processes: 32 keep-alive connections opened at once are spread 40-60% each, connections and requests', async (t) => {
  const s = await startSluice(['start', APP, '--embedded', '--start-servers', '2', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const fronts = await s.frontendPids();
  assert.equal(fronts.length, 2);
  // A process serving its first requests compiles its code, and for that while takes no connection: a sibling
  // passes it over then (src/native/slot-acceptor.ts). Counted from here on, with both warm.
  await Promise.all(Array.from({ length: CONNECTIONS }, () => connection(s.url, 5)));
  const answers = (await Promise.all(Array.from({ length: CONNECTIONS }, () => connection(s.url, REQUESTS_PER_CONNECTION)))).flat();

  const connections = new Map<number, Set<object>>(fronts.map((p) => [p, new Set()]));
  const requests = new Map<number, number>(fronts.map((p) => [p, 0]));
  const byConnection = new Map<object, Set<number>>();
  for (const a of answers) {
    connections.get(a.pid)?.add(a.socket);
    requests.set(a.pid, (requests.get(a.pid) ?? 0) + 1);
    byConnection.set(a.socket, (byConnection.get(a.socket) ?? new Set()).add(a.pid));
  }
  for (const pids of byConnection.values()) assert.equal(pids.size, 1, 'one process answers every request of a connection');
  assert.deepEqual([...requests.keys()].sort(), [...fronts].sort(), `only the front-end processes answer: ${JSON.stringify([...requests])}`);
  const total = CONNECTIONS * REQUESTS_PER_CONNECTION;
  const sockets = byConnection.size;
  const counts = JSON.stringify([...connections].map(([p, c]) => [p, c.size]));
  for (const p of fronts) {
    const c = connections.get(p)!.size / sockets;
    const r = requests.get(p)! / total;
    assert.ok(c >= 0.4 && c <= 0.6, `front end ${p} took ${connections.get(p)!.size} of ${sockets} connections: ${counts}`);
    assert.ok(r >= 0.4 && r <= 0.6, `front end ${p} answered ${requests.get(p)} of ${total} requests`);
  }
});

test('a front-end process whose event loop is blocked is passed over: connections that arrive meanwhile go to its sibling', async (t) => {
  const s = await startSluice(['start', path.join(APPS, 'lab.ts'), '--embedded', '--start-servers', '2', '--socket-prefix', tempDir()]);
  t.after(() => s.stop());
  const fronts = await s.frontendPids();
  // Blocks the event loop of the process that takes it for 3 s.
  const spin = request(`${s.url}/spin?ms=3000`);
  await sleep(300);
  // Eight connections held open at once: more than the sibling may hold ahead of a process that accepts (2).
  const agents = Array.from({ length: 8 }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
  t.after(() => agents.forEach((a) => a.destroy()));
  const answeredBy = await Promise.all(agents.map((agent) => get(`${s.url}/pid`, agent)));
  const spun = Number(/spun pid (\d+)/.exec((await spin).body)?.[1]);
  const sibling = fronts.find((p) => p !== spun);
  assert.ok(fronts.includes(spun) && sibling !== undefined);
  assert.deepEqual(answeredBy, answeredBy.map(() => sibling), 'the sibling answered every connection that came while the other was blocked');
});

function get(url: string, agent: http.Agent): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(Number(body)));
      })
      .on('error', reject);
  });
}
