// Cause codes: every response sluice itself makes and every process recycle
// names one, in the error log, the access log and the `sluice-cause` header,
// so "which timeout was it?" is never a guess.
export const CAUSES = {
  'connect-timeout': 'the daemon group could not be reached within connect-timeout',
  'daemon-unavailable': 'the daemon group socket is missing or not accessible',
  'queue-timeout': 'the request waited longer than queue-timeout before a slot picked it up',
  'socket-timeout': 'a read or write between front end and daemon took longer than socket-timeout',
  'response-socket-timeout': 'the client did not take the response within response-socket-timeout',
  'request-timeout-recovered': 'request-timeout fired; the request was interrupted and unwound',
  'request-timeout-recycled': 'request-timeout fired and the request did not unwind; the process was recycled',
  deadlock: 'the event loop was blocked for deadlock-timeout; the process was replaced',
  crash: 'the daemon process died or broke the connection mid-request',
  'protocol-error': 'the daemon sent something that is not a valid response',
  'app-error': 'the app threw before responding',
  'app-load-error': 'the app module failed to load',
  'startup-timeout': 'loading the app took longer than startup-timeout',
  'maximum-requests': 'the process served maximum-requests requests',
  'restart-interval': 'the process ran for restart-interval',
  'cpu-time-limit': 'the process used cpu-time-limit seconds of CPU',
  'memory-limit': 'the process resident memory exceeded memory-limit',
  inactivity: 'the process was idle for inactivity-timeout',
  reload: 'the app file changed (script reloading)',
  eviction: 'the process was evicted (SIGUSR1 / sluice evict)',
  shutdown: 'the server or process is shutting down',
  restart: 'the server is restarting (graceful restart)',
  'bad-request': 'the request was malformed or ambiguously framed (request smuggling); it was not forwarded',
  'limit-request-body': 'the request body was larger than limitRequestBody',
} as const;

export type Cause = keyof typeof CAUSES;
