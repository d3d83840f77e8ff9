// `sluice systemd-unit [-c FILE | APP start options] [--socket] [--unit-user USER]`:
// a systemd unit that runs this configuration (src/supervisor/systemd.ts
// speaks the protocols it declares), or with --socket the socket unit that
// holds its listening sockets across restarts. docs/deploy.md explains each
// setting.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../config/errors.js';
import type { EffectiveConfig } from '../config/types.js';

/** One word of an ExecStart= line: systemd splits on spaces, expands % specifiers and $VARIABLES. */
function word(s: string): string {
  const escaped = s.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** The longest a stop takes: drain-time, then the front end's shutdown-timeout (+2 s before it is killed), then the daemons' (+1 s). */
export function stopSeconds(c: EffectiveConfig): number {
  const daemons = Math.max(0, ...Object.values(c.groups).map((g) => g.shutdownTimeout));
  return Math.ceil(c.drainTime + c.shutdownTimeout + 2 + daemons + 1);
}

/** systemd's own PATH for services; the node that made the unit goes first. */
const SYSTEM_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

export interface UnitRequest {
  /** The arguments sluice is to run with: start APP ... or serve -c FILE ... */
  command: string[];
  config: EffectiveConfig;
  user: string | undefined;
}

export function serviceUnit({ command, config, user }: UnitRequest): string {
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'sluice');
  const what = config.configFile ?? config.hosts[0]?.mounts[0]?.app ?? 'sluice';
  const runsAsOthers = Object.values(config.groups).some((g) => g.identity);
  if (user !== undefined && runsAsOthers) {
    throw new ConfigError('--unit-user', 'a group runs as another user (user / group), which needs sluice started as root: leave the unit to run as root');
  }
  const lowPort = config.listen.some((l) => l.port > 0 && l.port < 1024);
  const lines = [
    `# ${config.configFile ? 'sluice serve' : 'sluice start'} as a systemd service (sluice systemd-unit).`,
    '# Save as /etc/systemd/system/sluice.service; systemctl daemon-reload; systemctl enable --now sluice.',
    '# A sluice.socket beside it (sluice systemd-unit --socket) makes systemd hold the listening sockets.',
    '[Unit]',
    `Description=sluice: ${what}`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    '# READY=1 once every daemon group has a ready process; RELOADING=1 / READY=1 around a graceful restart;',
    '# STOPPING=1 when a stop begins. Only the supervisor (the main process) notifies.',
    'Type=notify',
    'NotifyAccess=main',
    `ExecStart=${[bin, ...command].map(word).join(' ')}`,
    '# SIGHUP: graceful restart (the configuration and env files read again, every process replaced).',
    'ExecReload=/bin/kill -HUP $MAINPID',
    `WorkingDirectory=${word(process.cwd())}`,
    `Environment=${word(`PATH=${[...new Set([path.dirname(process.execPath), ...SYSTEM_PATH])].join(':')}`)}`,
    '# SIGTERM to the supervisor alone: readiness fails, drain-time, then the front end stops and its',
    '# in-flight requests get shutdown-timeout, then the daemons; whatever is left is killed at TimeoutStopSec.',
    'KillMode=mixed',
    `TimeoutStopSec=${stopSeconds(config)}`,
    '# The supervisor sends WATCHDOG=1 every WatchdogSec / 2; one that stops running is restarted.',
    'WatchdogSec=30',
    'Restart=on-failure',
    '# Exit status 2 is a bad configuration: restarting does not mend it.',
    'RestartPreventExitStatus=2',
  ];
  if (user !== undefined) {
    lines.push(`User=${word(user)}`);
    if (lowPort) lines.push('# Ports below 1024 without root (unless sluice.socket binds them).', 'AmbientCapabilities=CAP_NET_BIND_SERVICE');
  } else if (!runsAsOthers) {
    lines.push('# No group switches users: run it as an ordinary user (sluice systemd-unit --unit-user NAME).', '#User=www-data');
  }
  lines.push('', '[Install]', 'WantedBy=multi-user.target', '');
  return lines.join('\n');
}

export function socketUnit(config: EffectiveConfig): string {
  const listen = config.listen.map((l, i) => {
    if (l.port === 0) throw new ConfigError(config.listen.length === 1 ? 'port' : `listen[${i}].port`, 'a socket unit needs a fixed port, not 0');
    return `ListenStream=${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`;
  });
  return [
    '# The listening sockets of sluice.service (sluice systemd-unit --socket): systemd binds them and',
    '# passes them to sluice (LISTEN_FDS), so they outlive a restart and a connection made meanwhile waits.',
    '# Save as /etc/systemd/system/sluice.socket; systemctl enable --now sluice.socket.',
    '[Unit]',
    'Description=sluice listening sockets',
    '',
    '[Socket]',
    ...listen,
    '# The listen backlog sluice uses when it binds them itself.',
    'Backlog=511',
    '',
    '[Install]',
    'WantedBy=sockets.target',
    '',
  ].join('\n');
}
