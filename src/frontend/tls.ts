// HTTPS listeners: the front end takes TCP connections from the slot
// acceptor and, on a listener with `tls`, runs the TLS handshake itself
// before handing the decrypted stream to the HTTP server (as https.Server
// does on 'secureConnection'). ALPN offers `h2` and `http/1.1`, or
// `http/1.1` only where the listener has HTTP/2 off; a client that names
// neither gets HTTP/1.1. The certificate and key are read when the
// front-end process starts, so the new processes of a graceful restart
// serve replaced files.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { EffectiveListen } from '../config/types.js';

const WITH_HTTP2 = ['h2', 'http/1.1'];
const HTTP1_ONLY = ['http/1.1'];

export class TlsListeners {
  /** By listener index; undefined for plain HTTP listeners. */
  private readonly contexts: Array<tls.SecureContext | undefined>;
  private readonly alpn: string[][];

  constructor(listen: EffectiveListen[]) {
    this.contexts = listen.map((l) =>
      l.tls ? tls.createSecureContext({ cert: fs.readFileSync(l.tls.cert), key: fs.readFileSync(l.tls.key) }) : undefined,
    );
    this.alpn = listen.map((l) => (l.http2 ? WITH_HTTP2 : HTTP1_ONLY));
  }

  isTls(listener: number): boolean {
    return this.contexts[listener] !== undefined;
  }

  /**
   * Starts the server side of a TLS handshake on `raw`. `onSecure` runs once
   * it completes (`socket.alpnProtocol` says which HTTP the client chose); a
   * failed handshake destroys both sockets (their 'close' gives the slot back).
   */
  wrap(raw: net.Socket, listener: number, onSecure: (socket: tls.TLSSocket) => void, onFailure: (err: Error) => void): tls.TLSSocket {
    const socket = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: this.contexts[listener],
      ALPNProtocols: this.alpn[listener],
    });
    let secure = false;
    socket.once('secure', () => {
      secure = true;
      // What tls.Server marks on its connections once they are secure: an
      // HTTP/2 session waits for the handshake while it is still set.
      (socket as tls.TLSSocket & { secureConnecting: boolean }).secureConnecting = false;
      onSecure(socket);
    });
    socket.on('error', (err) => {
      // After the handshake the HTTP server owns the socket and its errors.
      if (secure) return;
      onFailure(err);
      socket.destroy();
      raw.destroy();
    });
    raw.once('close', () => socket.destroy());
    return socket;
  }
}
