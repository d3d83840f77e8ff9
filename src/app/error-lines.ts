// An error message on one line: its first lines that say what went wrong
// (a compiler's message and position), without stack frames.
export function firstLines(message: string, lines = 3): string {
  return message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !/^at /.test(l))
    .slice(0, lines)
    .join(' ');
}
