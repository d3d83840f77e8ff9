// Node-style app for the hosts/TLS tests: what it sees of the request and its process.
import type http from 'node:http';
import { requestContext } from 'sluice';

export default function tlsNode(req: http.IncomingMessage, res: http.ServerResponse) {
  const ctx = requestContext();
  res.setHeader('content-type', 'application/json');
  res.end(
    JSON.stringify({
      app: 'node',
      pid: process.pid,
      url: req.url,
      host: req.headers.host,
      encrypted: Boolean((req.socket as { encrypted?: boolean }).encrypted),
      remoteAddress: req.socket.remoteAddress,
      remotePort: req.socket.remotePort,
      scheme: ctx?.scheme,
      clientAddress: ctx?.clientAddress,
      clientPort: ctx?.clientPort,
      processGroup: ctx?.processGroup,
    }),
  );
}
