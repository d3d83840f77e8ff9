// An app that takes HEALTH_LOAD_MS (default 1000) to load: a replacement
// process leaves its group without a ready process for that long.
await new Promise((r) => setTimeout(r, Number(process.env.HEALTH_LOAD_MS ?? 1000)));

export default {
  fetch(request: Request): Response | Promise<Response> {
    const ms = Number(new URL(request.url).searchParams.get('sleep') ?? 0);
    if (ms > 0) return new Promise((r) => setTimeout(() => r(new Response(`slept ${ms} in ${process.pid}`)), ms));
    return new Response(`hello from ${process.pid}`);
  },
};
