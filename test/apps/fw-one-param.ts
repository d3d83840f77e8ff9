// A one-parameter function, its parameter named like a Node request: still
// fetch style, since a Node listener cannot answer without `res`.
export default (req: Request): Response => new Response(`one-param ${req.method} ${new URL(req.url).pathname}`);
