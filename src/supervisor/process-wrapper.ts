// SLUICE_FRONTEND_WRAPPER and SLUICE_DAEMON_WRAPPER: a command the front-end
// (or the daemon) processes run under, split at spaces, such as valgrind, to
// measure them (bench/instructions.ts, docs/operating.md).
export type WrapperVariable = 'SLUICE_FRONTEND_WRAPPER' | 'SLUICE_DAEMON_WRAPPER';

/** `command` (a program and its arguments) under the wrapper `variable` names, if it names one. */
export function underWrapper(variable: WrapperVariable, command: string[]): [string, ...string[]] {
  const wrapper = (process.env[variable] ?? '').split(' ').filter((w) => w !== '');
  return [...wrapper, ...command] as [string, ...string[]];
}
