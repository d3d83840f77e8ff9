// Keep-alive GETs of the hello app, a fixed number of them, one at a time on
// each connection: the load of the benchmarks that count (instructions,
// allocations) rather than time.
import net from 'node:net';

/** `n` keep-alive GETs over `conns` connections, one at a time on each. */
export async function drive(port: number, n: number, conns: number): Promise<void> {
  let left = n;
  const req = `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUser-Agent: sluice-bench\r\nAccept: */*\r\n\r\n`;
  await Promise.all(
    Array.from(
      { length: conns },
      () =>
        new Promise<void>((resolve, reject) => {
          const s = net.connect(port, '127.0.0.1');
          let buf = '';
          const next = () => {
            if (left <= 0) return void s.end(resolve);
            left--;
            s.write(req);
          };
          s.on('data', (d: Buffer) => {
            buf += d.toString('latin1');
            for (let end; (end = responseEnd(buf)) > 0; next()) buf = buf.slice(end);
          });
          s.on('connect', next);
          s.on('error', reject);
        }),
    ),
  );
}

/** Where the first response in `buf` ends (framed by its Content-Length, or chunked); 0 if it has not all come. */
function responseEnd(buf: string): number {
  const head = buf.indexOf('\r\n\r\n');
  if (head < 0) return 0;
  const length = /\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, head));
  if (length) return buf.length >= head + 4 + Number(length[1]) ? head + 4 + Number(length[1]) : 0;
  const last = buf.indexOf('\r\n0\r\n\r\n', head);
  return last < 0 ? 0 : last + 7;
}
