// What access, auth and dispatch hooks are given about a request (the
// counterpart of the WSGI environ mod_wsgi hands its scripts).
import type { IncomingHttpHeaders } from 'node:http';

export interface HookContext {
  readonly method: string;
  /** The request target as the front end decided it (normalised: src/frontend/request-target.ts); the app sees the same. */
  readonly url: string;
  /** The request target relative to the mount point (what the app will see). */
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** "" for the root mount, else "/prefix". */
  readonly mountPoint: string;
  /** The Host header, validated ("" when there is none); an absolute-form target's authority when it had one. */
  readonly host: string;
  /** serverName of the virtual host that matched. */
  readonly serverName: string;
  readonly scheme: 'http' | 'https';
  /** The authenticated user, once the auth hook accepted one (dispatch hooks see it). */
  remoteUser: string | undefined;
  /** Aborted when hookTimeout expires: the request has been answered 503 and nothing the hook returns is used. */
  readonly signal: AbortSignal;
}
