// The error log: one line per event, naming the process role, group, pid,
// and for requests the status, cause code and request id; for an app's own
// output (captured by the supervisor), the stream it wrote to. As text:
//   2026-11-22T22:43:01.123Z [error] [daemon:web pid 4242] 500 app-error request=k3x.1f GET /x threw: ...
//   2026-11-22T22:43:01.123Z [info] [daemon:web pid 4242 stdout] what the app printed
// or as JSON lines (logFormat json), one object per line with the same fields:
//   {"time":"...","level":"error","role":"daemon","group":"web","pid":4242,"status":500,"cause":"app-error","request":"k3x.1f","message":"GET /x threw: ..."}
import { LogSink } from './sink.js';
import type { LogFormat } from '../config/types.js';

export type Level = 'error' | 'warn' | 'notice' | 'info';

export interface LogFields {
  group?: string;
  pid?: number;
  status?: number;
  cause?: string;
  request?: string;
  /** The process the line is about, when not this one (captured app output): its role. */
  role?: string;
  /** Captured app output: the stream it was written to. */
  stream?: 'stdout' | 'stderr';
}

let sink: LogSink | undefined;
let role = 'sluice';
let format: LogFormat = 'text';

export function openErrorLog(target: string, processRole: string, logFormat: LogFormat = 'text'): void {
  sink = new LogSink(target, false);
  role = processRole;
  format = logFormat;
}

export function log(level: Level, message: string, f: LogFields = {}): void {
  (sink ??= new LogSink('stderr', false)).write(format === 'json' ? jsonLine(level, message, f) : textLine(level, message, f));
}

function textLine(level: Level, message: string, f: LogFields): string {
  const who = `${f.role ?? role}${f.group ? `:${f.group}` : ''} pid ${f.pid ?? process.pid}${f.stream ? ` ${f.stream}` : ''}`;
  let line = `${new Date().toISOString()} [${level}] [${who}]`;
  if (f.status !== undefined) line += ` ${f.status}`;
  if (f.cause) line += ` ${f.cause}`;
  if (f.request) line += ` request=${f.request}`;
  return `${line} ${message}`;
}

function jsonLine(level: Level, message: string, f: LogFields): string {
  return JSON.stringify({
    time: new Date().toISOString(),
    level,
    role: f.role ?? role,
    group: f.group,
    pid: f.pid ?? process.pid,
    stream: f.stream,
    status: f.status,
    cause: f.cause,
    request: f.request,
    message,
  });
}

export const logError = (m: string, f?: LogFields) => log('error', m, f);
export const logWarn = (m: string, f?: LogFields) => log('warn', m, f);
export const logNotice = (m: string, f?: LogFields) => log('notice', m, f);
