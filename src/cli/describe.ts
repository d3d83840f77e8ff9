// `sluice check`: the effective configuration in words.
import { GROUP_OPTIONS, GLOBAL, requestTimeoutFirePoint } from '../config/options.js';
import type { EffectiveConfig } from '../config/types.js';

function show(kind: string, v: unknown): string {
  if (v === undefined) return '(unset)';
  if (kind === 'seconds') return v === 0 ? '0 (off)' : `${v} s`;
  if (kind === 'bytes') return v === 0 ? '0 (off)' : `${v} bytes`;
  return String(v);
}

export function describeConfig(c: EffectiveConfig): string {
  const out: string[] = [];
  out.push(`config: ${c.configFile ?? '(sluice start)'}${c.tuned ? ' with the tuned start defaults' : ''}`);
  out.push(`listen: ${c.listen.map((l) => `${l.host}:${l.port}`).join(', ')}`);
  out.push(`timeout: ${c.timeout} s   keep-alive-timeout: ${c.keepAliveTimeout} s   stop: ${c.shutdownTimeout} s`);
  out.push(`socket-prefix: ${c.socketPrefix}`);
  out.push(`access-log: ${c.accessLog === false ? 'off' : c.accessLog}   error-log: ${c.errorLog}`);
  for (const g of Object.values(c.groups)) {
    out.push(`group ${g.name}:`);
    for (const spec of GROUP_OPTIONS) {
      let line = `  ${spec.flag}: ${show(spec.kind, g[spec.key])}`;
      if (spec.key === 'requestTimeout' && g.requestTimeout > 0) {
        line += ` (fires at ${requestTimeoutFirePoint(g.requestTimeout, g.threads).toFixed(1)} s with threads ${g.threads})`;
      }
      out.push(line);
    }
  }
  for (const h of c.hosts) {
    out.push(`host ${h.serverName}${h.serverAlias.length ? ` (aliases ${h.serverAlias.join(', ')})` : ''}:`);
    for (const m of h.mounts) {
      const where = m.processGroup === GLOBAL ? 'embedded' : `group ${m.processGroup}`;
      out.push(`  ${m.path || '/'} -> ${m.app} (${where}, application group ${m.applicationGroup}, callable ${m.callableObject}, style ${m.style})`);
    }
  }
  return out.join('\n') + '\n';
}
