// The public API for apps and config files.
export { requestContext, type RequestContext } from './app/context.js';
export { RequestTimeout } from './app/request-timeout.js';
export { drainSignal, type DrainReason } from './app/drain.js';
export type { UserConfig, MountConfig, HostConfig, ListenConfig, AppStyle } from './config/types.js';
export type { GroupOptions } from './config/options.js';
export type { HookContext } from './frontend/hooks/context.js';
import type { UserConfig } from './config/types.js';

/** Types a sluice.config.ts: `export default defineConfig({ ... })`. */
export function defineConfig(config: UserConfig): UserConfig {
  return config;
}
