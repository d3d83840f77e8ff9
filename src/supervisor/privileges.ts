// Daemon processes running as another user and group (a group's `user` /
// `group` options), as mod_wsgi's daemon processes do. The supervisor binds
// every socket first; each daemon process starts as root, opens its error
// log, then drops to the configured identity (supplementary groups from the
// user's, primary group set, then the user) before it loads any app code.
// Switching needs root: a configuration that asks for another identity while
// sluice runs as an ordinary user is refused (exit 2) rather than silently
// running the apps as that user.
import { ConfigError } from '../config/errors.js';
import type { DaemonIdentity, EffectiveConfig, EffectiveGroup } from '../config/types.js';

function currentIds(): { uid: number; gid: number } {
  return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

/** Throws a ConfigError when a group asks for an identity this process cannot switch to. */
export function checkPrivileges(config: EffectiveConfig): void {
  const me = currentIds();
  if (me.uid === 0) return;
  for (const g of Object.values(config.groups)) {
    const id = g.identity;
    if (!id || (id.uid === me.uid && id.gid === me.gid)) continue;
    const key = g.user !== undefined && id.uid !== me.uid ? `${id.at}.user` : `${id.at}.group`;
    throw new ConfigError(
      key,
      `running the daemon processes as ${id.user} (uid ${id.uid}, gid ${id.gid}) needs sluice started as root; it runs as uid ${me.uid}, gid ${me.gid} (drop the option, or start sluice as root)`,
    );
  }
}

/** Environment a daemon process of `g` starts with (HOME, USER and LOGNAME of its user). */
export function identityEnv(g: EffectiveGroup): Record<string, string> {
  const id = g.identity;
  if (!id || g.user === undefined) return {};
  const env: Record<string, string> = { USER: id.user, LOGNAME: id.user };
  if (id.userHome) env.HOME = id.userHome;
  return env;
}

/** In the daemon process, before any app code runs. */
export function dropPrivileges(id: DaemonIdentity): void {
  const me = currentIds();
  if (me.uid === id.uid && me.gid === id.gid) return;
  const withGroups = process as NodeJS.Process & { initgroups?: (user: string, extraGroup: number) => void };
  if (me.uid === 0) withGroups.initgroups?.(id.user, id.gid);
  process.setgid?.(id.gid);
  process.setuid?.(id.uid);
}
