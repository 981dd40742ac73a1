// Baselines started by the bench itself: Prometheus Alertmanager and nginx from Debian's packages when
// installed (`apt install prometheus-alertmanager nginx-light`); otherwise the figure says it had none.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

async function freePort() {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function ready(url: string, child: ChildProcess) {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${url}: the baseline exited (${child.exitCode})`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not come up`);
}

export interface Baseline {
  url: string;
  pid: number;
  stop(): void;
}

/** The durable floor of alert intake (durable-floor.mjs): always there, it needs only node. */
export async function startDurableFloor(dir: string): Promise<Baseline> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const script = join(import.meta.dirname, 'durable-floor.mjs');
  const child = spawn(process.execPath, [script, join(dir, 'floor.db'), String(port)], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await ready(url, child);
  return { url, pid: child.pid!, stop: () => child.kill() };
}

/** Alertmanager 0.25 in memory (no cluster), a route to a receiver that sends nothing. */
export async function startAlertmanager(dir: string): Promise<Baseline | undefined> {
  if (!has('prometheus-alertmanager')) return undefined;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'am.yml'), 'route:\n  receiver: none\nreceivers:\n  - name: none\n');
  const port = await freePort();
  const child = spawn(
    'prometheus-alertmanager',
    [
      `--config.file=${join(dir, 'am.yml')}`,
      `--storage.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=error',
    ],
    { stdio: 'ignore' },
  );
  const url = `http://127.0.0.1:${port}`;
  await ready(`${url}/-/ready`, child);
  return { url, pid: child.pid!, stop: () => child.kill() };
}

/** nginx serving `root` as static files, sendfile on, one worker per core. */
export async function startNginx(dir: string, root: string): Promise<Baseline | undefined> {
  const bin = ['nginx', '/usr/sbin/nginx'].find(has);
  if (!bin) return undefined;
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const port = await freePort();
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes auto;
${process.getuid?.() === 0 ? 'user root;' : ''}
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'logs', 'error.log')};
daemon off;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  server { listen 127.0.0.1:${port}; root ${root}; location = /healthz { return 200 'ok'; } }
}
`,
  );
  const child = spawn(bin, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  await ready(`${url}/healthz`, child);
  return { url, pid: child.pid!, stop: () => child.kill() };
}

/** CPU seconds a process (and its reaped children) used so far, from /proc. */
export function cpuSeconds(pid: number) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime, stime, cutime, cstime are fields 14–17 of stat (11–14 after the name).
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return 0;
  }
}

/** A process's resident memory now, MB. */
export const rssMb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Stops a bench's network and removes its folder: the distribution bench alone leaves about 10 GB of
 * installed packages. BENCH_KEEP=1 keeps it, to read its logs.
 */
export async function stopAndRemove(net: { dir: string; stopAll(): Promise<void> }) {
  await net.stopAll();
  if (process.env.BENCH_KEEP) console.log(`kept ${net.dir}`);
  else rmSync(net.dir, { recursive: true, force: true });
}
