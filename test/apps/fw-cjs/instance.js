// CommonJS by its package.json: which module instance answered.
const instance = Math.random().toString(36).slice(2);

exports.fetch = (request) => Response.json({ instance, pid: process.pid, url: new URL(request.url).pathname });
