// The listeners (`listen`, or `port`/`host`), HTTPS ones with their PEM
// files and HTTP/2 limits, and which listeners each virtual host answers on
// (`hosts[i].listen`).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { X509Certificate, KeyObject } from 'node:crypto';
import { ConfigError } from './errors.js';
import type { EffectiveListen, Http2Limits } from './types.js';

// Loaded only for a TLS listener: the supervisor of a plain-HTTP server does without OpenSSL's start-up.
const crypto = () => createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');

type Raw = Record<string, unknown>;

const LISTEN_KEYS = ['port', 'host', 'tls', 'name', 'http2'];
const TLS_KEYS = ['cert', 'key'];
const HTTP2_KEYS = ['maxConcurrentStreams', 'maxHeaderListSize'];

/** Apache's H2MaxSessionStreams; Node's own default is unlimited. */
const DEFAULT_MAX_CONCURRENT_STREAMS = 100;
/** The largest value an HTTP/2 SETTINGS parameter can carry. */
const MAX_SETTING = 2 ** 32 - 1;

function isObject(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function show(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v) ?? String(v);
}

function parsePort(v: unknown, at: string): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(at, `must be a TCP port 0-65535 (got ${show(v)})`);
  return n;
}

function parseText(v: unknown, at: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(at, `must be a non-empty string (got ${show(v)})`);
  return v;
}

function readPem(file: string, at: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigError(at, `file not found: ${file}`);
    throw new ConfigError(at, `cannot read ${file} (${code ?? (err as Error).message})`);
  }
}

/**
 * Reads and checks an HTTPS listener's certificate and key: both PEM, and the
 * key the certificate's. The front end reads the files again when it starts,
 * so a graceful restart serves a replaced certificate.
 */
export function checkTlsFiles(cert: string, key: string, at: string): void {
  let x509: X509Certificate;
  try {
    x509 = new (crypto().X509Certificate)(readPem(cert, `${at}.cert`));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${at}.cert`, `not a PEM certificate: ${cert}`);
  }
  let k: KeyObject;
  try {
    k = crypto().createPrivateKey(readPem(key, `${at}.key`));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${at}.key`, `not an unencrypted PEM private key: ${key}`);
  }
  if (!x509.checkPrivateKey(k)) throw new ConfigError(`${at}.key`, `does not match the certificate ${cert}`);
}

function parseSetting(v: unknown, at: string, min: number): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > MAX_SETTING) {
    throw new ConfigError(at, `must be a whole number from ${min} to ${MAX_SETTING} (got ${show(v)})`);
  }
  return n;
}

/**
 * `listen[i].http2`: whether an HTTPS listener offers HTTP/2 (by default it
 * does), and its limits. undefined: it does not.
 */
function parseHttp2(v: unknown, at: string, https: boolean, maxHeaderSize: number): Http2Limits | undefined {
  if (v === false) return undefined;
  if (v !== undefined && v !== true && !isObject(v)) {
    throw new ConfigError(at, `must be true, false or { ${HTTP2_KEYS.join(', ')} } (got ${show(v)})`);
  }
  if (!https) {
    if (v === undefined) return undefined;
    throw new ConfigError(at, 'HTTP/2 is offered on HTTPS listeners only (this one has no tls); plain HTTP is HTTP/1.1');
  }
  const o = isObject(v) ? v : {};
  for (const k of Object.keys(o)) if (!HTTP2_KEYS.includes(k)) throw new ConfigError(`${at}.${k}`, `unknown key (http2 has ${HTTP2_KEYS.join(', ')})`);
  return {
    maxConcurrentStreams: o.maxConcurrentStreams === undefined ? DEFAULT_MAX_CONCURRENT_STREAMS : parseSetting(o.maxConcurrentStreams, `${at}.maxConcurrentStreams`, 1),
    maxHeaderListSize: o.maxHeaderListSize === undefined ? maxHeaderSize : parseSetting(o.maxHeaderListSize, `${at}.maxHeaderListSize`, 1024),
  };
}

/** `maxHeaderSize`: the default header list size of HTTP/2 listeners. */
export function parseListen(raw: Raw, baseDir: string, maxHeaderSize: number): EffectiveListen[] {
  const out: EffectiveListen[] = [];
  if (raw.listen !== undefined) {
    if (raw.port !== undefined || raw.host !== undefined) {
      throw new ConfigError('listen', 'give either "listen" or "port"/"host", not both');
    }
    if (!Array.isArray(raw.listen) || raw.listen.length === 0) {
      throw new ConfigError('listen', `must be a non-empty array of { port, host, tls, name, http2 } (got ${show(raw.listen)})`);
    }
    raw.listen.forEach((l: unknown, i) => {
      const at = `listen[${i}]`;
      if (!isObject(l)) throw new ConfigError(at, `must be { port, host, tls, name, http2 } (got ${show(l)})`);
      for (const k of Object.keys(l)) if (!LISTEN_KEYS.includes(k)) throw new ConfigError(`${at}.${k}`, `unknown key (listen entries have ${LISTEN_KEYS.join(', ')})`);
      const e: EffectiveListen = {
        host: l.host === undefined ? '0.0.0.0' : parseText(l.host, `${at}.host`),
        port: parsePort(l.port, `${at}.port`),
      };
      if (l.name !== undefined) {
        e.name = parseText(l.name, `${at}.name`);
        if (out.some((o) => o.name === e.name)) throw new ConfigError(`${at}.name`, `"${e.name}" names another listener too`);
      }
      if (l.tls !== undefined) {
        if (!isObject(l.tls)) throw new ConfigError(`${at}.tls`, `must be { cert, key } (PEM files) (got ${show(l.tls)})`);
        for (const k of Object.keys(l.tls)) if (!TLS_KEYS.includes(k)) throw new ConfigError(`${at}.tls.${k}`, 'unknown key (tls has cert and key)');
        const cert = path.resolve(baseDir, parseText(l.tls.cert, `${at}.tls.cert`));
        const key = path.resolve(baseDir, parseText(l.tls.key, `${at}.tls.key`));
        checkTlsFiles(cert, key, `${at}.tls`);
        e.tls = { cert, key };
      }
      const http2 = parseHttp2(l.http2, `${at}.http2`, e.tls !== undefined, maxHeaderSize);
      if (http2) e.http2 = http2;
      out.push(e);
    });
  } else {
    out.push({ host: raw.host === undefined ? '0.0.0.0' : parseText(raw.host, 'host'), port: parsePort(raw.port ?? 8000, 'port') });
  }
  const seen = new Set<string>();
  for (const l of out) {
    const k = `${l.host}:${l.port}`;
    if (l.port !== 0 && seen.has(k)) throw new ConfigError('listen', `${k} is listed twice`);
    seen.add(k);
  }
  return out;
}

/**
 * `hosts[i].listen`: the listeners a host answers on, by listener name or
 * port number (every listener when not given). Returns listener indexes.
 */
export function parseHostListen(v: unknown, at: string, listen: EffectiveListen[]): number[] {
  if (v === undefined) return listen.map((_, i) => i);
  if (!Array.isArray(v) || v.length === 0) throw new ConfigError(at, `must be a non-empty array of listener names or ports (got ${show(v)})`);
  const out = new Set<number>();
  v.forEach((ref: unknown, j) => {
    const found =
      typeof ref === 'number'
        ? listen.flatMap((l, i) => (l.port === ref && ref !== 0 ? [i] : []))
        : typeof ref === 'string'
          ? listen.flatMap((l, i) => (l.name === ref ? [i] : []))
          : [];
    if (found.length === 0) {
      const names = listen.map((l) => l.name).filter(Boolean);
      throw new ConfigError(`${at}[${j}]`, `no listener ${typeof ref === 'number' ? 'on port' : 'named'} ${show(ref)}${names.length ? ` (named listeners: ${names.join(', ')})` : ''}`);
    }
    for (const i of found) out.add(i);
  });
  return [...out].sort((a, b) => a - b);
}

/** Two hosts on a common listener may not claim the same name: the second could never be reached. */
export function checkHostNames(hosts: Array<{ serverName: string; serverAlias: string[]; listeners: number[] }>, at: (i: number) => string): void {
  const claimed = new Map<string, number>(); // "listener\0name" -> host index
  hosts.forEach((h, i) => {
    for (const name of [h.serverName, ...h.serverAlias]) {
      if (name === '_default_') continue;
      for (const l of h.listeners) {
        const k = `${l}\0${name}`;
        const other = claimed.get(k);
        if (other !== undefined && other !== i) {
          throw new ConfigError(at(i), `"${name}" is already served by ${at(other)} on the same listener; give the hosts different listeners (hosts[].listen)`);
        }
        claimed.set(k, i);
      }
    }
  });
}
