// Positions in the code V8 runs, as positions in the files the app's author
// wrote: a TypeScript app runs compiled (tsx inlines a source map in each
// module it compiles). The inspector reports raw positions with each
// script's sourceMapURL; this maps them the way Node's --enable-source-maps
// maps an Error's stack.
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

const INLINE = /^data:application\/json(?:;charset=[^;,]+)?;base64,/;

export class SourcePositions {
  private readonly maps = new Map<string, SourceMap | null>();

  /** `url:line:column` (1-based), through the script's source map when it has one. */
  where(url: string, sourceMapURL: string | undefined, line0: number, column0: number): string {
    const entry = this.map(url, sourceMapURL)?.findEntry(line0, column0);
    if (entry && 'originalSource' in entry && entry.originalSource) {
      return `${fileOf(entry.originalSource)}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
    }
    return `${fileOf(url)}:${line0 + 1}:${column0 + 1}`;
  }

  private map(url: string, sourceMapURL: string | undefined): SourceMap | undefined {
    if (!sourceMapURL || !INLINE.test(sourceMapURL)) return undefined;
    let m = this.maps.get(url);
    if (m === undefined) {
      try {
        m = new SourceMap(JSON.parse(Buffer.from(sourceMapURL.replace(INLINE, ''), 'base64').toString('utf8')));
      } catch {
        m = null;
      }
      this.maps.set(url, m);
    }
    return m ?? undefined;
  }
}

function fileOf(url: string): string {
  return url.startsWith('file:') ? fileURLToPath(url) : url;
}
