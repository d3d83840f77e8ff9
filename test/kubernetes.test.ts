// docs/deploy.md's container and Kubernetes material, tested where it can be
// without a container engine: every manifest parses, names only options
// sluice has and agrees with the configuration it runs; the metrics the
// autoscaler reads are in a real /metrics; and the sequence the page promises
// (readiness until ready, preStop, SIGTERM to PID 1, drain, exit within the
// grace period) is played against real sluice processes, as PID 1 of a new
// PID namespace and behind tini, the way a container runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { BIN, ROOT, Sluice, request, runSluice, sleep, tempDir } from './helpers/sluice.ts';

const DOC = fs.readFileSync(path.join(ROOT, 'docs', 'deploy.md'), 'utf8');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Every fenced block of a language. */
function blocks(lang: string): string[] {
  return [...DOC.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
}

function manifests(): Obj[] {
  return blocks('yaml').flatMap((text) =>
    parseAllDocuments(text).map((d) => {
      assert.deepEqual(d.errors, [], `YAML errors in:\n${text}`);
      return d.toJS() as Obj;
    }),
  );
}

const byKind = (kind: string) => manifests().find((m) => m.kind === kind)!;

/** A directory standing in for the image's /srv/app (and /etc/sluice), with the app and the secret env file. */
function appDir(): { dir: string; at: (p: string) => string; configFile: string; config: Obj } {
  const dir = tempDir('sluice-k8s-');
  const at = (p: string) => p.replace('/srv/app', dir).replace('/etc/sluice', path.join(dir, 'etc'));
  fs.mkdirSync(path.join(dir, 'secrets'));
  fs.mkdirSync(path.join(dir, 'etc'));
  fs.writeFileSync(path.join(dir, 'secrets', 'app.env'), 'APP_SECRET=s3cret\n');
  fs.writeFileSync(
    path.join(dir, 'app.ts'),
    `export default { fetch(request: Request) {
      const ms = Number(new URL(request.url).searchParams.get('sleep') ?? 0);
      return new Promise<Response>((r) => setTimeout(() => r(new Response('ok ' + process.env.APP_SECRET)), ms));
    } };\n`,
  );
  const text = byKind('ConfigMap').data['sluice.config.json'] as string;
  const configFile = path.join(dir, 'etc', 'sluice.config.json');
  fs.writeFileSync(configFile, at(at(text)));
  return { dir, at, configFile, config: JSON.parse(text) as Obj };
}

async function checkJson(args: string[]): Promise<Obj> {
  const r = await runSluice([...args, '--json']);
  assert.equal(r.code, 0, `sluice ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Obj;
}

test('the manifests parse as YAML, run `sluice check` clean, and agree with the configuration they run', async () => {
  const { at, configFile, config } = appDir();
  const deployment = byKind('Deployment');
  const pod = deployment.spec.template;
  const [container] = pod.spec.containers as Obj[];
  // The container's arguments and the configuration are options sluice has.
  const effective = await checkJson((container!.args as string[]).map(at).map((a) => (a === 'serve' ? 'check' : a)));
  assert.equal(effective.configFile, configFile);
  assert.equal(effective.groups.web.envFileVariables.join(), 'APP_SECRET');

  const port = (container!.ports as Obj[]).find((p) => p.name === 'http')!;
  assert.equal(port.containerPort, config.port);
  assert.equal(container!.readinessProbe.httpGet.path, effective.readiness.path);
  assert.equal(container!.livenessProbe.httpGet.path, effective.liveness.path);
  assert.equal(container!.readinessProbe.httpGet.port, 'http');
  assert.equal(container!.livenessProbe.httpGet.port, 'http');
  assert.equal(pod.metadata.annotations['prometheus.io/scrape'], 'true');
  assert.equal(pod.metadata.annotations['prometheus.io/path'], effective.metrics.path);
  assert.equal(pod.metadata.annotations['prometheus.io/port'], String(port.containerPort));
  assert.ok(effective.metrics.allow.length > 0);
  // The ConfigMap and the secret are mounted where the configuration reads them.
  const mounts = Object.fromEntries((container!.volumeMounts as Obj[]).map((m) => [m.name, m.mountPath]));
  assert.equal(mounts.config, '/etc/sluice');
  assert.ok(config.groups.web.envFile.startsWith(mounts.secrets + '/'));
  assert.equal(mounts.tmp, '/tmp', 'sluice writes only its socket directory, under /tmp');

  // The grace period covers preStop and the longest stop sluice says it takes.
  const text = (await runSluice(['check', '-c', configFile])).stdout;
  const stop = Number(/a stop takes at most (\d+) s/.exec(text)![1]);
  const preStop = Number((container!.lifecycle.preStop.exec.command as string[])[1]);
  assert.deepEqual(container!.lifecycle.preStop.exec.command, ['sleep', String(preStop)]);
  assert.ok(pod.spec.terminationGracePeriodSeconds > preStop + stop, `${pod.spec.terminationGracePeriodSeconds} s > ${preStop} s + ${stop} s`);
  assert.match(DOC, new RegExp(`${preStop} \\+ \\(5 \\+ 20 \\+ 2 \\+\\s+15 \\+ 1\\) = ${preStop + stop} s`), 'the page does the same sum');
  assert.ok(DOC.includes(`the longest stop (sluice check: ${stop} s)`));

  const service = byKind('Service');
  assert.deepEqual(service.spec.selector, deployment.spec.selector.matchLabels);
  assert.equal(service.spec.ports[0].targetPort, 'http');

  const hpa = byKind('HorizontalPodAutoscaler');
  assert.equal(hpa.spec.scaleTargetRef.name, deployment.metadata.name);
  const rule = manifests().find((m) => Array.isArray(m.rules))!.rules[0] as Obj;
  assert.equal(hpa.spec.metrics[0].pods.metric.name, rule.name.as);
});

test('the Dockerfile runs sluice in exec form behind an init, as an unprivileged user, with arguments sluice accepts', async () => {
  const [dockerfile] = blocks('dockerfile');
  const { at, config } = appDir();
  const instruction = (name: string) => [...dockerfile!.matchAll(new RegExp(`^${name} (.*)$`, 'gm'))].map((m) => m[1]!);
  const user = instruction('USER').at(-1);
  assert.ok(user && user !== 'root' && user !== '0', `USER ${user}`);
  const entrypoint = JSON.parse(instruction('ENTRYPOINT')[0]!) as string[];
  const cmd = JSON.parse(instruction('CMD')[0]!) as string[];
  assert.equal(entrypoint[0], '/usr/bin/tini');
  assert.ok(entrypoint.at(-1)!.endsWith('node_modules/.bin/sluice'));
  assert.equal(Number(instruction('EXPOSE')[0]), config.port);
  const r = await runSluice(cmd.map(at).map((a) => (a === 'serve' ? 'check' : a)).map((a) => a.replace(/sluice\.config\.json$/, 'etc/sluice.config.json')));
  assert.equal(r.code, 0, r.stderr);
  assert.match(instruction('RUN').join('\n'), /npm ci --omit=dev/);
});

test('the autoscaler\'s metrics are in a real /metrics, and the documented query is utilisation', async (t) => {
  const { configFile, config } = appDir();
  const local = { ...config, metrics: { ...config.metrics, allow: ['127.0.0.1'] } };
  fs.writeFileSync(configFile.replace('.json', '-local.json'), JSON.stringify(local).replaceAll('/srv/app', path.dirname(path.dirname(configFile))));
  const s = await startSluiceServe(configFile.replace('.json', '-local.json'));
  t.after(() => s.stop());
  await Promise.all(Array.from({ length: 5 }, () => request(s.url + '/?sleep=300')));
  const metrics = (await request(s.url + config.metrics.path)).body;
  const rule = manifests().find((m) => Array.isArray(m.rules))!.rules[0] as Obj;
  const used = new Set([...`${rule.seriesQuery} ${rule.metricsQuery}`.matchAll(/\bsluice_\w+/g)].map((m) => m[0]));
  assert.ok(used.size >= 2);
  for (const name of used) assert.match(metrics, new RegExp(`^${name}\\{group="web"\\} `, 'm'), `${name} is in /metrics`);
  const busy = Number(new RegExp('^sluice_group_busy_slot_seconds_total\\{group="web"\\} (\\S+)', 'm').exec(metrics)![1]);
  assert.ok(busy >= 1.2, `5 requests of 0.3 s are 1.5 busy slot-seconds (${busy})`);
});

async function startSluiceServe(configFile: string, wrap: string[] = []): Promise<Sluice> {
  const child = spawn(wrap[0] ?? BIN, [...wrap.slice(1), ...(wrap.length ? [BIN] : []), 'serve', '-c', configFile, '--port', '0', '--host', '127.0.0.1'], {
    env: { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s = new Sluice(child);
  const m = await s.waitFor(/serving (http:\/\/\S+)\//, 20000);
  s.url = m[1]!;
  return s;
}

/** The process that is PID 1 of the namespace `unshare --fork` made. */
async function namespaceInit(unsharePid: number): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const children = fs.readFileSync(`/proc/${unsharePid}/task/${unsharePid}/children`, 'utf8').trim();
    if (children) return Number(children.split(' ')[0]);
    await sleep(10);
  }
  throw new Error('no child of unshare');
}

/**
 * The kubelet and two load balancers around one pod: readiness probes every
 * `period` ms; on deletion, preStop, then SIGTERM to PID 1, then SIGKILL at
 * the grace period. The Service's proxy stops sending at `deregister` ms
 * after deletion (within preStop); a load balancer that health-checks the
 * pod stops after `failureThreshold` failed readiness probes.
 */
async function kubelet(s: Sluice, init: number, o: { period: number; preStop: number; grace: number; deregister: number; failureThreshold: number }) {
  const events: string[] = [];
  let ready = false;
  let readyFailures = 0;
  let deleted = false;
  const failures: string[] = [];
  const probe = async (p: string) => (await request(s.url + p, { timeoutMs: 1000 }).catch((e: Error) => ({ status: 0, body: e.message }))).status;
  const t0 = Date.now();
  while (!ready) {
    if ((await probe('/readyz')) === 200) ready = true;
    else await sleep(o.period);
  }
  events.push('ready');
  const liveness = (async () => {
    while (s.child.exitCode === null) {
      const st = await probe('/livez');
      if (st !== 200 && s.child.exitCode === null && st !== 0) failures.push(`liveness ${st}`);
      await sleep(o.period);
    }
  })();
  const readiness = (async () => {
    while (s.child.exitCode === null) {
      const st = await probe('/readyz');
      if (st === 200) readyFailures = 0;
      else if (++readyFailures === o.failureThreshold) events.push('readiness failed');
      await sleep(o.period);
    }
  })();
  let deletedAt = 0;
  const traffic = (until: () => boolean, name: string) =>
    (async () => {
      let n = 0;
      while (!until()) {
        const r = await request(s.url + '/', { timeoutMs: 5000 }).catch((e: Error) => ({ status: 0, body: e.message }));
        if (r.status !== 200) failures.push(`${name} request ${n}: ${r.status} ${r.body}`);
        n++;
        await sleep(20);
      }
      return n;
    })();
  const service = traffic(() => deleted && Date.now() - deletedAt > o.deregister, 'service');
  const healthChecking = traffic(() => readyFailures >= o.failureThreshold, 'health-checking balancer');
  await sleep(500);
  const long = request(s.url + '/?sleep=2500', { timeoutMs: 10000 });
  // The pod is deleted: preStop runs, then SIGTERM to the container's PID 1.
  deleted = true;
  deletedAt = Date.now();
  await sleep(o.preStop);
  events.push('SIGTERM');
  process.kill(init, 'SIGTERM');
  const killer = setTimeout(() => process.kill(init, 'SIGKILL'), deletedAt + o.grace - Date.now());
  const exit = await s.exited;
  clearTimeout(killer);
  const exitedAfter = Date.now() - deletedAt;
  events.push('exited');
  const [served, servedByBalancer] = await Promise.all([service, healthChecking, readiness, liveness]);
  return { exit, exitedAfter, failures, events, served, servedByBalancer, long: await long, startedAfter: t0 };
}

async function podConfig(drainTime: number): Promise<string> {
  const { configFile, config } = appDir();
  const file = configFile.replace('.json', '-pod.json');
  fs.writeFileSync(file, JSON.stringify({ ...config, drainTime }).replaceAll('/srv/app', path.dirname(path.dirname(configFile))));
  return file;
}

const POD = { period: 100, preStop: 1000, deregister: 300, failureThreshold: 2 };

for (const [name, wrap] of [
  ['sluice as PID 1', []],
  ['tini as PID 1, sluice its child', ['tini', '--']],
] as const) {
  test(`the kubelet's sequence with ${name}: ready, preStop, SIGTERM: not ready at once, served through the drain, in-flight finished, exit 0 within the grace period`, async (t) => {
    assert.equal(spawnSync('unshare', ['--pid', '--fork', 'true']).status, 0, 'this test makes a PID namespace (unshare, as root)');
    if (wrap.length) assert.equal(spawnSync('tini', ['--version']).status, 0, "this test needs tini (Debian's tini package; .ci/run installs it)");
    const file = await podConfig(1);
    const grace = POD.preStop + 1000 * Number(/a stop takes at most (\d+) s/.exec((await runSluice(['check', '-c', file])).stdout)![1]);
    const s = await startSluiceServe(file, ['unshare', '--pid', '--fork', '--kill-child', ...wrap]);
    t.after(() => s.stop('SIGKILL'));
    const init = await namespaceInit(s.pid);
    assert.match(fs.readFileSync(`/proc/${init}/cmdline`, 'utf8'), wrap.length ? /^tini\0/ : /bin\/sluice\0serve\0/);
    const r = await kubelet(s, init, { ...POD, grace });
    assert.deepEqual(r.failures, [], 'no client saw a failure and liveness never failed');
    assert.deepEqual(r.events, ['ready', 'SIGTERM', 'readiness failed', 'exited']);
    assert.ok(r.servedByBalancer > r.served, 'the health-checking balancer kept sending through the drain, and was served');
    assert.equal(r.long.status, 200, 'the request in flight at SIGTERM finished');
    assert.deepEqual(r.exit, { code: 0, signal: null });
    assert.ok(r.exitedAfter < grace, `exited ${r.exitedAfter} ms after deletion, within the grace period ${grace} ms`);
    assert.match(s.output, /SIGTERM: draining for drain-time 1 s: still serving, readiness answers 503/);
  });
}
