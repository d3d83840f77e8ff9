// `sluice check`: the effective configuration in words.
import { GROUP_OPTIONS, GLOBAL, requestTimeoutFirePoint } from '../config/options.js';
import type { EffectiveConfig } from '../config/types.js';
import type { MountHooks } from '../config/hooks.js';
import { configPitfalls, wedgeRecoverySeconds } from '../config/pitfalls.js';
import { FRONT_END_KEYS } from '../config/front-end.js';
import { daemonsLimit, type MpmDirectives } from '../mpm/directives.js';
import { shapeProfile } from '../mpm/load-profile.js';
import { simulate } from '../mpm/simulate.js';
import { stopSeconds } from './systemd-unit.js';

function show(kind: string, v: unknown): string {
  if (v === undefined) return '(unset)';
  if (kind === 'seconds') return v === 0 ? '0 (off)' : `${v} s`;
  if (kind === 'bytes') return v === 0 ? '0 (off)' : `${v} bytes`;
  if (kind === 'environment') return Object.entries(v as Record<string, string>).map(([k, x]) => `${k}=${x}`).join(' ') || '(none)';
  return String(v);
}

export function describeConfig(c: EffectiveConfig): string {
  const out: string[] = [];
  out.push(`config: ${c.configFile ?? '(sluice start)'}${c.tuned ? ' with the tuned start defaults' : ''}`);
  out.push(`listen: ${c.listen.map((l) => `${l.host}:${l.port}${l.name ? ` (${l.name})` : ''}${l.tls ? ` https cert ${l.tls.cert} key ${l.tls.key}` : ''}`).join(', ')}`);
  out.push(`timeout: ${c.timeout} s   keep-alive-timeout: ${c.keepAliveTimeout} s   hook-timeout: ${c.hookTimeout} s   stop: ${c.shutdownTimeout} s`);
  out.push(`socket-prefix: ${c.socketPrefix}`);
  out.push(`access-log: ${c.accessLog === false ? 'off' : c.accessLog}   error-log: ${c.errorLog}`);
  out.push(`max-header-size: ${c.maxHeaderSize} bytes   limit-request-body: ${c.limitRequestBody === 0 ? '0 (no limit)' : `${c.limitRequestBody} bytes`}`);
  const endpoint = (e: EffectiveConfig['status']) => (e ? `${e.path} (allow ${e.allow.join(', ')})` : 'off');
  out.push(`status page: ${endpoint(c.status)}   metrics: ${endpoint(c.metrics)}`);
  const health = (e: EffectiveConfig['liveness']) => (e ? `${e.path} (${e.allow ? `allow ${e.allow.join(', ')}` : 'any client'})` : 'off');
  out.push(`liveness: ${health(c.liveness)}   readiness: ${health(c.readiness)}   drain-time: ${c.drainTime} s`);
  const daemonStop = Math.max(0, ...Object.values(c.groups).map((g) => g.shutdownTimeout));
  out.push(`a stop takes at most ${stopSeconds(c)} s: drain-time ${c.drainTime} s, the front end's ${c.shutdownTimeout} s (+2 s), then the daemons' ${daemonStop} s (+1 s)`);
  out.push(...describeFrontEnd(c.frontEnd, c.maintenanceInterval));
  for (const g of Object.values(c.groups)) {
    out.push(`group ${g.name}:`);
    for (const spec of GROUP_OPTIONS) {
      let line = `  ${spec.flag}: ${show(spec.kind, g[spec.key])}`;
      if (spec.key === 'requestTimeout' && g.requestTimeout > 0) {
        line += ` (fires at ${requestTimeoutFirePoint(g.requestTimeout, g.threads).toFixed(1)} s with threads ${g.threads})`;
      }
      out.push(line);
    }
    if (g.envFileVariables) out.push(`  env-file sets: ${Object.keys(g.envFileVariables).join(' ') || '(nothing)'}`);
    if (g.identity) out.push(`  runs as: ${g.identity.user} (uid ${g.identity.uid}, gid ${g.identity.gid}); sluice must start as root to switch`);
    if (g.requestTimeout > 0) {
      const fire = requestTimeoutFirePoint(g.requestTimeout, g.threads);
      out.push(`  fire points: a wedged slot is detected at ${fire.toFixed(1)} s; its process is gone at most ${(fire + wedgeRecoverySeconds(g)).toFixed(1)} s after the request started`);
    }
  }
  for (const h of c.hosts) {
    const on = h.listeners.length === c.listen.length ? '' : ` on ${h.listeners.map((i) => c.listen[i]!.name ?? `${c.listen[i]!.host}:${c.listen[i]!.port}`).join(', ')}`;
    out.push(`host ${h.serverName}${h.serverAlias.length ? ` (aliases ${h.serverAlias.join(', ')})` : ''}${on}:`);
    for (const m of h.mounts) {
      const where = m.processGroup === GLOBAL ? 'embedded' : `group ${m.processGroup}`;
      out.push(`  ${m.path || '/'} -> ${m.app} (${where}, application group ${m.applicationGroup}, callable ${m.callableObject}, style ${m.style})`);
      if (m.hooks) out.push(...describeHooks(m.hooks));
    }
    for (const m of h.statics) out.push(`  ${m.path || '/'} -> ${m.directory}/ (static files, served by the front end)`);
  }
  for (const p of configPitfalls(c)) out.push(`warning: group ${p.group}: ${p.key} ${p.message}`);
  for (const n of c.frontEndNotes) out.push(`${n.level === 'warn' ? 'warning' : 'notice'}: front end: ${n.key}: ${n.message}`);
  return out.join('\n') + '\n';
}

function describeHooks(h: MountHooks): string[] {
  const out: string[] = [];
  if (h.accessScript) out.push(`    access script: ${h.accessScript} (allowAccess)`);
  if (h.authUserScript) {
    const rule = h.require!;
    const who = rule.kind === 'valid-user' ? 'valid-user' : rule.kind === 'user' ? `user ${rule.users.join(', ')}` : `group ${rule.groups.join(', ')}`;
    out.push(`    auth: Basic realm "${h.authRealm}", require ${who}; checkPassword from ${h.authUserScript}${h.passAuthorization ? '; Authorization passed to the app' : ''}`);
  }
  if (h.authGroupScript) out.push(`    auth group script: ${h.authGroupScript} (groupsForUser)`);
  if (h.dispatchScript) out.push(`    dispatch script: ${h.dispatchScript}`);
  return out;
}

/** The resolved front-end directives, and where an idle server settles (by the maintenance itself). */
function describeFrontEnd(d: MpmDirectives, interval: number): string[] {
  const out = ['front end:'];
  for (const k of FRONT_END_KEYS) {
    const v = d[k.key];
    out.push(`  ${k.flag}: ${v}${k.key === 'maxConnectionsPerChild' && v === 0 ? ' (no limit)' : ''}`);
  }
  out.push(`  maintenance-interval: ${interval} s${interval === 1 ? '' : ' (Apache: 1 s)'}`);
  const limit = daemonsLimit(d);
  const settle = d.startServers + Math.ceil(d.minSpareThreads / d.threadsPerChild) + 10;
  const idle = simulate(d, shapeProfile('idle', { peak: 0, base: 0, duration: settle }), { startDelay: 0.5, drainSeconds: 1 });
  const end = idle.samples[idle.samples.length - 1]!.available;
  const last = idle.events[idle.events.length - 1];
  out.push(
    `  up to ${limit} processes of ${d.threadsPerChild} slots (${limit * d.threadsPerChild} connections); ` +
      `with no load: ${d.startServers} at start, ${end} ${end === d.startServers ? 'kept' : `after ${+((last ? last.t : 0) * interval).toFixed(3)} s`}`,
  );
  return out;
}
