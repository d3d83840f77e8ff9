// Hono with its Node WebSocket helper: the app's server is made with
// @hono/node-server's createAdaptorServer (which does not listen) and given
// to injectWebSocket, then exported. GET / is a page; /ws echoes messages.
//   bin/sluice start examples/hono-ws.mjs
import { Hono } from 'hono';
import { createAdaptorServer } from '@hono/node-server';
import { createNodeWebSocket } from '@hono/node-ws';

const app = new Hono();
const { injectWebSocket, upgradeWebSocket } = createNodeWebSocket({ app });

app.get('/', (c) => c.text('hono-ws\n'));
app.get(
  '/ws',
  upgradeWebSocket(() => ({
    onMessage(event, ws) {
      ws.send(String(event.data));
    },
  })),
);

const server = createAdaptorServer({ fetch: app.fetch });
injectWebSocket(server);

export default server;
