// An app whose first import ends its process (a dependency that was not up
// yet, say) and whose later imports succeed: FT_STATE names a file that
// records the first attempt.
import fs from 'node:fs';

const state = process.env.FT_STATE;
if (state && !fs.existsSync(state)) {
  fs.writeFileSync(state, 'tried');
  process.exit(1);
}

export default function exitOnce(req, res) {
  res.end(`up ${process.pid}`);
}
