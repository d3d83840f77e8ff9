// A fetch-style app for the fail-safe tests.
//   /wait?ms=N   answers after N ms unless request.signal aborts first (then
//                it rethrows the abort reason, as fetch-based code does)
//   /pid         the serving pid
export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/pid') return new Response(String(process.pid));
    if (url.pathname === '/wait') {
      const ms = Number(url.searchParams.get('ms') ?? 100);
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, ms);
        request.signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(request.signal.reason);
        });
      });
      return new Response(`waited pid ${process.pid}`);
    }
    return new Response('lc-fetch: no such route', { status: 404 });
  },
};
