// Virtual host and mount matching: Host header -> host among those answering
// on the connection's listener (ServerName / ServerAlias, "*" wildcards; the
// first of them is that listener's default host), then the
// longest mount path that is a whole-segment prefix of the request path.
import type { EffectiveConfig, EffectiveHost, EffectiveMount, EffectiveStaticMount } from '../config/types.js';

export interface Route {
  host: EffectiveHost;
  mount: EffectiveMount;
  /** The request target as the app sees it (mount prefix removed). */
  appUrl: string;
}

export interface StaticRoute {
  mount: EffectiveStaticMount;
  /** The request target below the mount path, query included: "" or "?query" for the mount path itself. */
  fileUrl: string;
}

/** The request target below mount path `p` when `p` is a whole-segment prefix of it. */
function belowMount(p: string, url: string): string | undefined {
  if (!url.startsWith(p)) return undefined;
  const rest = url.slice(p.length);
  return rest === '' || rest[0] === '/' || rest[0] === '?' ? rest : undefined;
}

function wildcard(pattern: string): RegExp {
  return new RegExp('^' + pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^.]*') + '$');
}

/** The hosts answering on one listener; the first of them is its default host. */
class HostTable {
  readonly exact = new Map<string, EffectiveHost>();
  readonly patterns: Array<{ re: RegExp; host: EffectiveHost }> = [];
  readonly defaultHost: EffectiveHost | undefined;
  readonly single: EffectiveHost | undefined;

  constructor(hosts: EffectiveHost[]) {
    this.defaultHost = hosts[0];
    this.single = hosts.length === 1 ? this.defaultHost : undefined;
    for (const h of hosts) {
      for (const name of [h.serverName, ...h.serverAlias]) {
        if (name.includes('*')) this.patterns.push({ re: wildcard(name), host: h });
        else if (!this.exact.has(name)) this.exact.set(name, h);
      }
    }
  }
}

export class Router {
  /** By listener index (config.listen): hosts are matched among those answering on the connection's listener. */
  private readonly tables: HostTable[];

  constructor(config: EffectiveConfig) {
    this.tables = config.listen.map((_, i) => new HostTable(config.hosts.filter((h) => h.listeners.includes(i))));
  }

  /** undefined: no host answers on this listener. */
  hostFor(hostHeader: string | undefined, listener = 0): EffectiveHost | undefined {
    const t = this.tables[listener];
    if (!t) return undefined;
    if (t.single) return t.single;
    if (!hostHeader) return t.defaultHost;
    let name = hostHeader.toLowerCase();
    // Strip the port: "name:8000", "[::1]:8000".
    if (name.startsWith('[')) {
      const end = name.indexOf(']');
      if (end > 0) name = name.slice(0, end + 1);
    } else {
      const colon = name.indexOf(':');
      if (colon >= 0 && name.indexOf(':', colon + 1) < 0) name = name.slice(0, colon);
    }
    if (name.endsWith('.')) name = name.slice(0, -1);
    const h = t.exact.get(name);
    if (h) return h;
    for (const p of t.patterns) if (p.re.test(name)) return p.host;
    return t.defaultHost;
  }

  route(hostHeader: string | undefined, url: string, listener = 0): Route | undefined {
    const host = this.hostFor(hostHeader, listener);
    if (!host) return undefined;
    for (const mount of host.mounts) {
      const p = mount.path;
      if (p === '') return { host, mount, appUrl: url };
      if (url.startsWith(p)) {
        const next = url.charCodeAt(p.length);
        // whole segment: "/api" matches "/api", "/api/x", "/api?q" but not "/apix"
        if (Number.isNaN(next)) return { host, mount, appUrl: '/' };
        if (next === 47 /* / */) return { host, mount, appUrl: url.slice(p.length) };
        if (next === 63 /* ? */) return { host, mount, appUrl: '/' + url.slice(p.length) };
      }
    }
    return undefined;
  }

  /** The static mount serving the request, when its path is longer than that of the app route (the longest mount path wins). */
  staticRoute(hostHeader: string | undefined, url: string, app: Route | undefined, listener = 0): StaticRoute | undefined {
    const host = app?.host ?? this.hostFor(hostHeader, listener);
    if (!host) return undefined;
    for (const mount of host.statics) {
      if (app && app.mount.path.length >= mount.path.length) return undefined;
      const fileUrl = belowMount(mount.path, url);
      if (fileUrl !== undefined) return { mount, fileUrl };
    }
    return undefined;
  }
}
