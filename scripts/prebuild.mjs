// `npm pack` / `npm publish` (prepack): builds the native addon and puts it
// where node-gyp-build finds it in the installed package,
// prebuilds/linux-x64/node.napi.glibc.node. The addon uses Node-API only, so
// this one build serves every supported Node version; it needs glibc 2.28,
// which every supported Node needs too. The package ships this one platform:
// elsewhere `npm install` builds the addon from source (binding.gyp).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const glibc = process.report.getReport().header.glibcVersionRuntime;
if (process.platform !== 'linux' || process.arch !== 'x64' || !glibc) {
  console.error(`prebuild: the package ships the linux-x64 (glibc) addon: pack it on such a machine (this is ${process.platform}-${process.arch}${glibc ? '' : ' without glibc'})`);
  process.exit(1);
}
// npm runs this with its own node-gyp at hand.
const gyp = process.env.npm_config_node_gyp;
const build = gyp ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: root, stdio: 'inherit' }) : spawnSync('node-gyp', ['rebuild'], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) {
  console.error(`prebuild: node-gyp rebuild failed${build.error ? `: ${build.error.message}` : ''}`);
  process.exit(1);
}
const dir = path.join(root, 'prebuilds', 'linux-x64');
fs.rmSync(path.join(root, 'prebuilds'), { recursive: true, force: true });
fs.mkdirSync(dir, { recursive: true });
fs.copyFileSync(path.join(root, 'build', 'Release', 'sluice_native.node'), path.join(dir, 'node.napi.glibc.node'));
console.error(`prebuild: ${path.relative(root, dir)}/node.napi.glibc.node`);
