// TypeScript in a CommonJS package (compiled to CommonJS on load): which
// module instance answered.
const instance = Math.random().toString(36).slice(2);

export default (request: Request): Response => Response.json({ instance, pid: process.pid, url: new URL(request.url).pathname });
