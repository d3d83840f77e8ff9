// Answers with the version its group's environment gives it (FT_VERSION) and
// its pid. Its import takes FT_LOAD_MS ms, so a graceful restart to it is slow.
import type http from 'node:http';

const loadMs = Number(process.env.FT_LOAD_MS ?? 0);
if (loadMs > 0) await new Promise((r) => setTimeout(r, loadMs));

export default function ftVersion(req: http.IncomingMessage, res: http.ServerResponse) {
  res.end(`${process.env.FT_VERSION} ${process.pid}`);
}
