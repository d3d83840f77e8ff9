// Hardening of the front end, in daemon and embedded mode, over raw sockets:
// head and body limits (431 / 414 / 413, limitRequestBody), request
// smuggling attempts refused with 400 and never reaching the app (the app
// records every request it sees in a file), slowloris clients bounded by
// the front end's timeout while normal clients keep being served, and
// malformed requests that never crash anything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startSluice, runSluice, request, sleep, tempDir, alive, APPS, type Sluice } from './helpers/sluice.js';
import { raw, eventually, get } from './helpers/raw.js';

const APP = path.join(APPS, 'hd-recorder.ts');
const LIMIT = 1000;
const MAX_HEAD = 4096;

type Mode = 'daemon' | 'embedded';
const MODES: Mode[] = ['daemon', 'embedded'];

interface Server {
  s: Sluice;
  /** Lines the app recorded so far. */
  seen(): string[];
}

async function start(t: { after(fn: () => unknown): void }, mode: Mode, extra: string[] = [], maxHead = MAX_HEAD): Promise<Server> {
  const dir = tempDir('sluice-hd-');
  const file = path.join(dir, 'seen.log');
  fs.writeFileSync(file, '');
  const args = ['start', APP, '--limit-request-body', String(LIMIT), '--max-header-size', String(maxHead), '--socket-prefix', dir, ...extra];
  if (mode === 'embedded') args.push('--embedded');
  else args.push('--processes', '1', '--threads', '1');
  const s = await startSluice(args, { env: { HD_RECORD: file } });
  t.after(() => s.stop());
  return { s, seen: () => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) };
}


for (const mode of MODES) {
  test(`${mode}: a head over maxHeaderSize is 431, a request line over it 414; neither reaches the app`, async (t) => {
    const { s, seen } = await start(t, mode);
    const bigHeader = await raw(s.port, [get('/hd-431', `x-big: ${'a'.repeat(MAX_HEAD + 100)}\r\n`)]);
    assert.deepEqual(bigHeader.statuses, [431], bigHeader.data);
    assert.ok(bigHeader.closed);
    const manyHeaders = await raw(s.port, [get('/hd-431-many', Array.from({ length: 200 }, (_, i) => `x-h${i}: ${'v'.repeat(30)}\r\n`).join(''))]);
    assert.deepEqual(manyHeaders.statuses, [431], manyHeaders.data);
    const longUrl = await raw(s.port, [get(`/hd-414?q=${'u'.repeat(MAX_HEAD + 100)}`)]);
    assert.deepEqual(longUrl.statuses, [414], longUrl.data);
    assert.ok(longUrl.closed);
    // The same on a keep-alive connection, after a request that was served.
    const second = await raw(s.port, [get('/hd-ok-first'), { waitMs: 200 }, get(`/hd-414-second?q=${'u'.repeat(MAX_HEAD * 2)}`)]);
    assert.deepEqual(second.statuses, [200, 414], second.data);
    // Just under the limit is served.
    const under = await raw(s.port, [get(`/hd-under?q=${'u'.repeat(MAX_HEAD - 200)}`, 'connection: close\r\n')]);
    assert.deepEqual(under.statuses, [200], under.data);
    const lines = seen();
    assert.equal(lines.filter((l) => /\/hd-4\d\d/.test(l)).length, 0, lines.join('\n'));
    assert.ok(lines.some((l) => l.includes('seen GET /hd-ok-first')) && lines.some((l) => l.includes('seen GET /hd-under')), lines.join('\n'));
    assert.equal((await request(`${s.url}/hd-after`)).status, 200);
  });

  test(`${mode}: header lines past what Node hands over are refused with 431, not dropped`, async (t) => {
    const { s, seen } = await start(t, mode, [], 65536);
    // The Content-Length and a second Host come after a thousand lines.
    const filler = Array.from({ length: 1100 }, (_, i) => `a${i % 10}: v\r\n`).join('');
    const many = await raw(s.port, [`POST /hd-many HTTP/1.1\r\nHost: localhost\r\n${filler}Host: evil.example\r\nContent-Length: 5\r\n\r\nhello`]);
    assert.deepEqual(many.statuses, [431], many.data);
    assert.ok(many.closed);
    // Many, but not that many: served whole.
    const some = Array.from({ length: 300 }, (_, i) => `a${i % 10}: v\r\n`).join('');
    const fine = await raw(s.port, [`POST /hd-some HTTP/1.1\r\nHost: localhost\r\n${some}Content-Length: 5\r\nConnection: close\r\n\r\nhello`]);
    assert.deepEqual(fine.statuses, [200], fine.data);
    assert.match(fine.data, /POST \/hd-some 5 \[\]/);
    assert.ok(!seen().some((l) => l.includes('/hd-many')), seen().join('\n'));
  });

  test(`${mode}: limitRequestBody: a Content-Length over it is 413 before anything is forwarded; up to it the body arrives whole`, async (t) => {
    const { s, seen } = await start(t, mode);
    const head = (p: string, n: number, extra = '') => `POST ${p} HTTP/1.1\r\nHost: localhost\r\nContent-Length: ${n}\r\n${extra}\r\n`;
    // The head alone: the answer must not wait for the body.
    const over = await raw(s.port, [head('/hd-cl-over', LIMIT + 1)]);
    assert.deepEqual(over.statuses, [413], over.data);
    assert.match(over.data, /sluice-cause: limit-request-body/i);
    assert.ok(over.closed && over.ms < 2500, `answered and closed without the body (${over.ms} ms)`);
    // Expect: 100-continue gets the 413 instead of a 100 Continue.
    const expect = await raw(s.port, [head('/hd-cl-expect', 50_000_000, 'Expect: 100-continue\r\n')]);
    assert.deepEqual(expect.statuses, [413], expect.data);
    // With the body sent too, still refused, and nothing forwarded.
    const withBody = await raw(s.port, [head('/hd-cl-body', 4 * LIMIT), 'x'.repeat(4 * LIMIT)]);
    assert.deepEqual(withBody.statuses, [413], withBody.data);
    // At the limit: served, whole body; Expect gets its 100 first.
    const at = await request(`${s.url}/hd-cl-at`, { method: 'POST', body: 'y'.repeat(LIMIT) });
    assert.equal(at.status, 200);
    assert.equal(at.body, `POST /hd-cl-at ${LIMIT} []`);
    const expectOk = await raw(s.port, [head('/hd-cl-expect-ok', 10, 'Expect: 100-continue\r\nConnection: close\r\n'), { waitMs: 300 }, '0123456789']);
    assert.deepEqual(expectOk.statuses, [100, 200], expectOk.data);
    const lines = seen();
    assert.equal(lines.filter((l) => /hd-cl-(over|expect |body)/.test(l) || l.includes('/hd-cl-expect ')).length, 0, lines.join('\n'));
    assert.ok(lines.some((l) => l.includes(`body /hd-cl-at ${LIMIT}`)), lines.join('\n'));
    await eventually(() => s.accessLog().some((l) => l.url === '/hd-cl-over'));
    const logged = s.accessLog().filter((l) => l.url === '/hd-cl-over');
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.status, 413);
    assert.equal(logged[0]!.cause, 'limit-request-body');
  });

  test(`${mode}: limitRequestBody: a chunked body is refused with 413 as it crosses the limit; the app's request is aborted and the slot freed`, async (t) => {
    const { s, seen } = await start(t, mode);
    const chunk = (n: number) => `${n.toString(16)}\r\n${'z'.repeat(n)}\r\n`;
    const head = (p: string) => `POST ${p} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const parts: Part[] = [head('/hd-chunked-over')];
    // 4 x 300 bytes: the fourth crosses 1000; the client then waits.
    for (let i = 0; i < 4; i++) parts.push(chunk(300), { waitMs: 100 });
    const over = await raw(s.port, parts, 5000);
    assert.deepEqual(over.statuses, [413], over.data);
    assert.ok(over.closed, 'the connection is closed after the 413');
    // The app saw the request start, never its whole body, and its read was aborted.
    await eventually(() => seen().some((l) => l.includes('aborted /hd-chunked-over')));
    const lines = seen();
    assert.ok(lines.some((l) => l.includes('seen POST /hd-chunked-over')), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes('aborted /hd-chunked-over')), lines.join('\n'));
    assert.ok(!lines.some((l) => l.includes('body /hd-chunked-over')), lines.join('\n'));
    // The only slot (daemon mode: one process, one thread) is free again.
    const next = await request(`${s.url}/hd-next`, { timeoutMs: 5000 });
    assert.equal(next.status, 200);
    // Under the limit, chunked: served whole.
    const under = await raw(s.port, [head('/hd-chunked-under'), chunk(300), chunk(300), chunk(400), '0\r\n\r\n']);
    assert.deepEqual(under.statuses, [200], under.data);
    assert.match(under.data, /POST \/hd-chunked-under 1000 \[\]/);
    await eventually(() => s.accessLog().some((l) => l.url === '/hd-chunked-over'));
    const logged = s.accessLog().filter((l) => l.url === '/hd-chunked-over');
    assert.equal(logged.length, 1);
    assert.equal(logged[0]!.status, 413);
    assert.equal(logged[0]!.cause, 'limit-request-body');
  });

  test(`${mode}: request smuggling attempts are refused with 400 and never reach the app`, async (t) => {
    const { s, seen } = await start(t, mode);
    const inner = (name: string) => `GET /smuggled-${name} HTTP/1.1\r\nHost: localhost\r\n\r\n`;
    const post = (name: string, headers: string, body: string, version = '1.1') =>
      `POST /smuggle-${name} HTTP/${version}\r\nHost: localhost\r\n${headers}\r\n${body}`;
    const attempts: Record<string, string> = {
      'cl-and-te': post('cl-and-te', 'Content-Length: 4\r\nTransfer-Encoding: chunked\r\n', `0\r\n\r\n${inner('cl-and-te')}`),
      'te-and-cl': post('te-and-cl', 'Transfer-Encoding: chunked\r\nContent-Length: 60\r\n', `0\r\n\r\n${inner('te-and-cl')}`),
      'two-cl': post('two-cl', 'Content-Length: 0\r\nContent-Length: 44\r\n', inner('two-cl')),
      'same-cl-twice': post('same-cl-twice', 'Content-Length: 3\r\nContent-Length: 3\r\n', 'abc'),
      'cl-list': post('cl-list', 'Content-Length: 3, 3\r\n', 'abc'),
      'cl-plus': post('cl-plus', 'Content-Length: +3\r\n', 'abc'),
      'te-chunked-identity': post('te-chunked-identity', 'Transfer-Encoding: chunked, identity\r\n', `0\r\n\r\n${inner('te-chunked-identity')}`),
      'te-xchunked': post('te-xchunked', 'Transfer-Encoding: xchunked\r\n', `0\r\n\r\n${inner('te-xchunked')}`),
      'te-identity': post('te-identity', 'Transfer-Encoding: identity\r\n', `0\r\n\r\n${inner('te-identity')}`),
      'te-gzip-chunked': post('te-gzip-chunked', 'Transfer-Encoding: gzip, chunked\r\n', '0\r\n\r\n'),
      'te-twice': post('te-twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n', `0\r\n\r\n${inner('te-twice')}`),
      'te-vertical-tab': post('te-vertical-tab', 'Transfer-Encoding:\x0bchunked\r\n', `0\r\n\r\n${inner('te-vertical-tab')}`),
      'te-space-before-colon': post('te-space-before-colon', 'Transfer-Encoding : chunked\r\n', `0\r\n\r\n${inner('te-space-before-colon')}`),
      'te-obs-fold': post('te-obs-fold', 'Transfer-Encoding:\r\n chunked\r\n', `0\r\n\r\n${inner('te-obs-fold')}`),
      'te-leading-space-line': `POST /smuggle-te-leading-space-line HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: localhost\r\n\r\n0\r\n\r\n${inner('te-leading-space-line')}`,
      'te-http10': post('te-http10', 'Transfer-Encoding: chunked\r\n', `0\r\n\r\n${inner('te-http10')}`, '1.0'),
      'bare-lf-header': `POST /smuggle-bare-lf-header HTTP/1.1\r\nHost: localhost\nContent-Length: 0\r\n\r\n${inner('bare-lf-header')}`,
      'bare-cr-header': `POST /smuggle-bare-cr-header HTTP/1.1\r\nHost: localhost\rContent-Length: 0\r\n\r\n${inner('bare-cr-header')}`,
      'obs-fold-header': post('obs-fold-header', 'X-A: b\r\n c\r\n', ''),
      'nul-in-header': post('nul-in-header', 'X-A: a\x00b\r\n', ''),
      'two-hosts': `GET /smuggle-two-hosts HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n`,
    };
    for (const [name, payload] of Object.entries(attempts)) {
      const r = await raw(s.port, [payload]);
      assert.deepEqual(r.statuses, [400], `${name}: ${JSON.stringify(r.data)}`);
      assert.ok(r.closed, `${name}: connection closed after the 400`);
    }
    // Bad chunks: the head was fine, so the request was under way when the
    // parser met the bad chunk; nothing after the bad chunk is read as a request.
    const badChunks: Record<string, string> = {
      'chunk-not-hex': 'zz\r\nabc\r\n',
      'chunk-negative': '-3\r\nabc\r\n',
      'chunk-0x': '0x3\r\nabc\r\n',
      'chunk-overflow': 'fffffffffffffffffff\r\nabc\r\n',
      'chunk-space': '3 \r\nabc\r\n',
      'chunk-bare-lf': '3\nabc\n',
      'chunk-missing-crlf': '3\r\nabcX0\r\n\r\n',
      'chunk-longer-than-said': '3\r\nabcdef\r\n',
    };
    for (const [name, body] of Object.entries(badChunks)) {
      const r = await raw(s.port, [post(name, 'Transfer-Encoding: chunked\r\n', `${body}0\r\n\r\n${inner(name)}`)]);
      assert.deepEqual(r.statuses, [400], `${name}: ${JSON.stringify(r.data)}`);
      assert.ok(r.closed, `${name}: connection closed after the 400`);
    }
    // The bad chunk in a later packet, once the request went on: refused all the same.
    const split = await raw(s.port, [post('chunk-split', 'Transfer-Encoding: chunked\r\n', '3\r\nabc\r\n'), { waitMs: 300 }, `zz\r\nabc\r\n0\r\n\r\n${inner('chunk-split')}`]);
    assert.deepEqual(split.statuses, [400], split.data);
    await eventually(() => seen().some((l) => l.includes('aborted /smuggle-chunk-split')) && s.accessLog().some((l) => l.url === '/smuggle-chunk-split'));
    assert.ok(seen().some((l) => l.includes('aborted /smuggle-chunk-split')), seen().join('\n'));
    for (const name of [...Object.keys(badChunks), 'chunk-split']) {
      const logged = s.accessLog().filter((l) => l.url === `/smuggle-${name}`);
      assert.deepEqual(logged.map((l) => `${l.status} ${l.cause}`), ['400 bad-request'], name);
    }
    // CL.TE and TE.CL classics on a keep-alive connection, after a served request.
    const clte = await raw(s.port, [
      get('/hd-keepalive-1'),
      { waitMs: 200 },
      `POST /smuggle-clte HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG${inner('clte')}`,
    ]);
    assert.deepEqual(clte.statuses, [200, 400], clte.data);
    const tecl = await raw(s.port, [
      get('/hd-keepalive-2'),
      { waitMs: 200 },
      `POST /smuggle-tecl HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n5c\r\n${inner('tecl').padEnd(0x5c, 'x')}\r\n0\r\n\r\n`,
    ]);
    assert.deepEqual(tecl.statuses, [200, 400], tecl.data);
    // An Upgrade the front end does not take: what follows is not read as a request.
    const upgrade = await raw(s.port, [`GET /hd-upgrade HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n${inner('upgrade')}`], 1500);
    assert.ok(upgrade.statuses.length <= 1, upgrade.data);
    // Control: an ordinary request is recorded, so an absent line means "never reached".
    assert.equal((await request(`${s.url}/hd-control`)).status, 200);
    const lines = seen();
    assert.ok(lines.some((l) => l.includes('seen GET /hd-control')), lines.join('\n'));
    assert.ok(lines.some((l) => l.includes('seen GET /hd-keepalive-1')) && lines.some((l) => l.includes('seen GET /hd-keepalive-2')), lines.join('\n'));
    const smuggled = lines.filter((l) => l.includes('/smuggled-'));
    assert.deepEqual(smuggled, [], 'no smuggled request reached the app');
    // A request whose head was fine may have reached its app (embedded: at
    // the end of the head; daemon: once the parser was done with the packet
    // the head came in) before the parser met its bad chunk: then its body
    // read fails, and it never gets the body whole (checked below).
    const headAlreadyOn = Object.keys(badChunks).filter((n) => lines.some((l) => l.includes(`seen POST /smuggle-${n} `)));
    if (mode === 'daemon') assert.ok(headAlreadyOn.length < Object.keys(badChunks).length, 'a bad chunk in the packet of the head refuses the request before a daemon is handed it');
    for (const n of headAlreadyOn) assert.ok(lines.some((l) => l.includes(`aborted /smuggle-${n}`)), `${n}: the app's read of the body failed`);
    const refused = lines.filter((l) => /\/smuggle-/.test(l) && !l.includes('/smuggle-chunk-split') && !headAlreadyOn.some((n) => l.includes(`/smuggle-${n}`)));
    assert.deepEqual(refused, [], 'no refused request reached the app');
    const bodies = lines.filter((l) => / body \/smuggle-/.test(l));
    assert.deepEqual(bodies, [], 'no bad-chunked body reached the app whole');
    // What a daemon is handed is re-serialised: a header value with a byte
    // outside ASCII arrives as sent, hop-by-hop headers do not arrive (an
    // embedded app sees the client's request itself).
    const probe = await raw(s.port, [Buffer.concat([Buffer.from('GET /hd-probe HTTP/1.1\r\nHost: localhost\r\nConnection: close, x-drop\r\nKeep-Alive: 5\r\nx-probe: caf'), Buffer.from([0xe9]), Buffer.from('\r\n\r\n')])]);
    assert.deepEqual(probe.statuses, [200], probe.data);
    assert.ok(probe.data.endsWith('GET /hd-probe 0 [caf\u00e9]'), JSON.stringify(probe.data));
    const probeLine = seen().find((l) => l.includes('seen GET /hd-probe'))!;
    if (mode === 'daemon') assert.ok(!/"keep-alive"/.test(probeLine), probeLine);
  });

  test(`${mode}: a few hundred slowloris connections are closed by the front end's timeout while normal clients keep being served`, async (t) => {
    const timeoutS = 1;
    const { s } = await start(t, mode, ['--timeout', String(timeoutS), '--threads-per-child', '1024', '--server-limit', '1']);
    const frontend = await s.frontendPid();
    // Each slow connection uses a descriptor here and one in the front end.
    const limits = fs.readFileSync('/proc/self/limits', 'utf8');
    const nofile = Number(/Max open files\s+(\d+)/.exec(limits)?.[1] ?? 1024);
    const count = Math.max(50, Math.min(300, Math.floor((nofile - 200) / 2)));
    const t0 = performance.now();
    const slow: Array<Promise<RawReply & { kind: string }>> = [];
    for (let i = 0; i < count; i++) {
      const kind = i % 3 === 0 ? 'silent' : i % 3 === 1 ? 'byte-at-a-time' : 'headers-never-end';
      let parts: Part[];
      if (kind === 'silent') parts = [];
      else if (kind === 'byte-at-a-time') parts = [...'GET /hd-slow HTTP/1.1\r\nHost: localhost\r\nX-Slow: '].flatMap((c) => [c, { waitMs: 150 }]);
      else parts = [`GET /hd-slow HTTP/1.1\r\nHost: localhost\r\n`, ...Array.from({ length: 40 }, (_, j) => [`x-h${j}: v\r\n`, { waitMs: 150 }]).flat()];
      slow.push(raw(s.port, parts, 15_000).then((r) => ({ ...r, kind })));
    }
    // Normal clients during the attack.
    await sleep(200);
    const normal: number[] = [];
    const deadline = performance.now() + timeoutS * 1000 * 2.5;
    while (performance.now() < deadline) {
      const r = await request(`${s.url}/hd-normal?n=${normal.length}`, { timeoutMs: 10_000 });
      assert.equal(r.status, 200);
      normal.push(r.ms);
      await sleep(20);
    }
    const all = await Promise.all(slow);
    const elapsed = performance.now() - t0;
    for (const r of all) {
      // Closed by the server within the timeout plus a check interval and
      // generous scheduling slack; never served.
      assert.ok(r.closed, `${r.kind} connection was not closed by the server (${r.ms.toFixed(0)} ms)`);
      assert.ok(r.ms < timeoutS * 1000 + 4000, `${r.kind} connection closed after ${r.ms.toFixed(0)} ms`);
      assert.ok(r.ms > timeoutS * 1000 - 200, `${r.kind} connection closed too early (${r.ms.toFixed(0)} ms)`);
      assert.ok(r.statuses.length === 0 || (r.statuses.length === 1 && r.statuses[0] === 408), `${r.kind}: ${r.data}`);
    }
    assert.ok(all.filter((r) => r.kind !== 'silent' && r.statuses[0] === 408).length > 0, 'partial heads are answered 408');
    normal.sort((a, b) => a - b);
    const median = normal[Math.floor(normal.length / 2)]!;
    // A slot shortage would make them wait for the timeout (1 s) to free one.
    assert.ok(normal.length >= 5, `${normal.length} normal requests`);
    assert.ok(median < 400, `normal requests took ${normal.map((m) => m.toFixed(0)).join(', ')} ms`);
    assert.ok(elapsed < 20_000, `the attack lasted ${elapsed.toFixed(0)} ms`);
    assert.ok(alive(frontend));
    assert.equal((await request(`${s.url}/hd-after`)).status, 200);
  });

  test(`${mode}: malformed requests get 4xx and never crash anything`, async (t) => {
    const { s } = await start(t, mode);
    const frontends = await s.frontendPids();
    const daemons = mode === 'daemon' ? await s.groupPids('hd-recorder') : [];
    // A seeded generator: the same garbage every run.
    let seed = 0x5eed;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const bytes = (n: number, from = 0, to = 256) => Buffer.from(Array.from({ length: n }, () => from + rnd(to - from)));
    const methods = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH'];
    const shapes: Array<() => Buffer> = [
      // random bytes with a line end
      () => Buffer.concat([bytes(1 + rnd(80), 0, 32), bytes(1 + rnd(80)), Buffer.from('\r\n\r\n')]),
      // a method, then a target with control characters
      () => Buffer.concat([Buffer.from(`${methods[rnd(methods.length)]} /`), bytes(1 + rnd(20), 0, 32), Buffer.from(' HTTP/1.1\r\nHost: x\r\n\r\n')]),
      // a bad version
      () => Buffer.from(`GET /x ${['HTTP/9.9', 'HTTP/1.1x', 'HTTP/', 'HTTP/1', 'http/1.1', 'HTTP/1.1 extra', 'HTTP/01.1'][rnd(7)]}\r\nHost: x\r\n\r\n`),
      // a method that is not one
      () => Buffer.concat([bytes(1 + rnd(12), 97, 123), Buffer.from(' / HTTP/1.1\r\nHost: x\r\n\r\n')]),
      // header lines of garbage
      () => Buffer.concat([Buffer.from('GET /x HTTP/1.1\r\nHost: x\r\n'), bytes(1 + rnd(60), 0, 32), Buffer.from(': v\r\n\r\n')]),
      () => Buffer.concat([Buffer.from('GET /x HTTP/1.1\r\nHost: x\r\nX-A: '), bytes(1 + rnd(40), 0, 9), Buffer.from('\r\n\r\n')]),
      // no Host in HTTP/1.1
      () => Buffer.from(`${methods[rnd(methods.length)]} /x HTTP/1.1\r\nX-A: b\r\n\r\n`),
      // a header without a colon
      () => Buffer.from('GET /x HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n'),
      // a Content-Length that is not a number
      () => Buffer.from(`POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: ${['abc', '-1', '1e3', '0x10', '99999999999999999999999', ' '][rnd(6)]}\r\n\r\n`),
    ];
    const cases = Array.from({ length: 240 }, (_, i) => shapes[i % shapes.length]!());
    for (let i = 0; i < cases.length; i += 24) {
      const batch = await Promise.all(cases.slice(i, i + 24).map((c) => raw(s.port, [c]).then((r) => ({ c, r }))));
      for (const { c, r } of batch) {
        assert.equal(r.statuses.length, 1, `${JSON.stringify(c.toString('latin1'))}: ${JSON.stringify(r.data)}`);
        assert.ok(r.statuses[0]! >= 400 && r.statuses[0]! < 500, `${JSON.stringify(c.toString('latin1'))}: ${JSON.stringify(r.data)}`);
      }
    }
    const ok = await request(`${s.url}/hd-still-serving`);
    assert.equal(ok.status, 200);
    for (const pid of [...frontends, ...daemons]) assert.ok(alive(pid), `process ${pid} still runs`);
    assert.doesNotMatch(s.output, /uncaught exception|unhandled promise rejection/);
  });
}

test('limitRequestBody is validated like other keys: exit 2 naming the key', async () => {
  const bad = await runSluice(['check', APP, '--limit-request-body', 'lots']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^sluice: --limit-request-body: must be a size in bytes/m);
  const negative = await runSluice(['check', APP, '--limit-request-body', '-5']);
  assert.equal(negative.code, 2);
  assert.match(negative.stderr, /--limit-request-body/);
  const dir = tempDir('sluice-hd-');
  const file = path.join(dir, 'sluice.config.json');
  fs.writeFileSync(file, JSON.stringify({ limitRequestBody: true, mounts: [{ path: '/', app: APP }] }));
  const inFile = await runSluice(['check', '-c', file]);
  assert.equal(inFile.code, 2);
  assert.match(inFile.stderr, /^sluice: limitRequestBody: must be a size in bytes/m);
  fs.writeFileSync(file, JSON.stringify({ limitRequestBody: '2M', mounts: [{ path: '/', app: APP }] }));
  const good = await runSluice(['check', '-c', file, '--json']);
  assert.equal(good.code, 0, good.stderr);
  assert.equal(JSON.parse(good.stdout).limitRequestBody, 2 * 1024 * 1024);
  const text = await runSluice(['check', '-c', file]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /limit-request-body: 2097152 bytes/);
});
