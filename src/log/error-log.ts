// The error log: one line per event, naming the process role, group, pid,
// and for requests the status, cause code and request id.
import { LogSink } from './sink.js';

export type Level = 'error' | 'warn' | 'notice' | 'info';

export interface LogFields {
  group?: string;
  pid?: number;
  status?: number;
  cause?: string;
  request?: string;
}

let sink: LogSink | undefined;
let role = 'sluice';

export function openErrorLog(target: string, processRole: string): void {
  sink = new LogSink(target, false);
  role = processRole;
}

export function log(level: Level, message: string, f: LogFields = {}): void {
  const who = `${role}${f.group ? `:${f.group}` : ''} pid ${f.pid ?? process.pid}`;
  let line = `${new Date().toISOString()} [${level}] [${who}]`;
  if (f.status !== undefined) line += ` ${f.status}`;
  if (f.cause) line += ` ${f.cause}`;
  if (f.request) line += ` request=${f.request}`;
  line += ` ${message}`;
  (sink ??= new LogSink('stderr', false)).write(line);
}

export const logError = (m: string, f?: LogFields) => log('error', m, f);
export const logWarn = (m: string, f?: LogFields) => log('warn', m, f);
export const logNotice = (m: string, f?: LogFields) => log('notice', m, f);
