// A daemon's response head on the hop (src/protocol/envelope.ts): its frame
// fits the room the frame writer reserves for it, and the front end decodes
// the stored head's status, message, cause and end-to-end headers from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeResponseHead, storedHeadBytesMax, writeStoredHead } from '../src/protocol/envelope.ts';

const HEADS = [
  { stored: 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: x\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n', message: 'OK', cause: undefined, headers: ['Content-Type', 'text/plain', 'Date', 'x'] },
  // One short line besides a long cause: the payload is longer than the stored head.
  { stored: 'HTTP/1.1 504 \r\nsluice-cause: request-timeout-recovered-and-more\r\n\r\n', message: '', cause: 'request-timeout-recovered-and-more', headers: ['sluice-cause', 'request-timeout-recovered-and-more'] },
  { stored: 'HTTP/1.1 404 Très bien\r\nX-Word:  grüße \r\nTE: trailers\r\nSLUICE-CAUSE: app-error\r\n\r\n', message: 'Très bien', cause: 'app-error', headers: ['X-Word', 'grüße', 'SLUICE-CAUSE', 'app-error'] },
  { stored: 'HTTP/1.1 204 No Content\r\n\r\n', message: 'No Content', cause: undefined, headers: [] },
];

test('a response head frame fits its room and decodes to the stored head without its hop-by-hop fields', () => {
  for (const h of HEADS) {
    const status = Number(h.stored.slice(9, 12));
    const head = { stored: h.stored, status, queueMicros: 42.5 };
    const buf = Buffer.alloc(storedHeadBytesMax(head));
    const end = writeStoredHead(buf, 0, head);
    assert.ok(end <= buf.length, `${JSON.stringify(h.stored)}: ${end} bytes in a room of ${buf.length}`);
    const decoded = decodeResponseHead(buf.subarray(0, end));
    assert.deepEqual(decoded, { status, statusMessage: h.message, cause: h.cause, queueMicros: 42.5, headers: h.headers });
  }
});
