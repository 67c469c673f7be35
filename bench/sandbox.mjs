// bench/sandbox: what the build sandbox costs (issue 19's targets).
// 1. Start per step: `/bin/sh -c :` run RUNS times in the sandbox (bwrap, then the
//    util-linux unshare fall-back) over the repository's build environment, against
//    the same command spawned directly on the host. Target: <= 20 ms over unsandboxed.
// 2. Warm build with a 50-package environment: tutorial chapter 5's hello (gcc from its
//    toolchain spec: 50 locked packages, plus the project's build environment), built
//    again with buildFragment once the environment is in the cache, against its build
//    steps alone (the same two steps run in the sandbox, nothing else). Target: <= 1 s over.
// Wall and CPU (user+sys of this process and its children) are printed side by side:
// the machine is shared, so read the ratios and the CPU.
//
// Usage: npm run build && node bench/sandbox.mjs [--runs N]
// The first run builds chapter 5's fragments into a scratch copy (downloads ~60 MB of
// packages into $REDO_TS_CACHE, default ~/.cache/redo-ts).
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, '..');
const { runInSandbox, assembleBuildEnvironment, buildFragment, cacheDirFrom } = await import(join(repo, 'dist/lib/index.js'));

// Without --runs, indexOf gives -1 and argv[0] (node's own path) would be read as the count.
const runs = process.argv.includes('--runs') ? Number(process.argv[process.argv.indexOf('--runs') + 1]) : 30;
const cacheDir = cacheDirFrom(process.env);
const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-bench-sandbox-'));

/** CPU ms of this process and its reaped children (user+sys, from /proc/self/stat; 100 ticks a second). */
function cpuMsNow() {
  const text = readFileSync('/proc/self/stat', 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 10;
}
async function measure(label, count, work) {
  const wall0 = performance.now();
  const cpu0 = cpuMsNow();
  for (let i = 0; i < count; i += 1) await work(i);
  const wallMs = (performance.now() - wall0) / count;
  const cpuMsPer = (cpuMsNow() - cpu0) / count;
  return { label, wallMs, cpuMs: cpuMsPer };
}
const host = (argv) => new Promise((done, fail) => {
  const child = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
  child.on('error', fail);
  child.on('close', (code) => (code === 0 ? done() : fail(new Error(`exit ${code}`))));
});

try {
  // Chapter 5, built once through the CLI (cold the first time: downloads, assembly).
  const chapter = join(scratch, 'chapter');
  cpSync(join(repo, 'tutorial', '05-layers-image'), chapter, { recursive: true });
  cpSync(join(repo, 'rules'), join(chapter, 'rules'), { recursive: true });
  const cold0 = performance.now();
  const built = spawnSync(process.execPath, [join(repo, 'bin', 'redo-ts.js'), 'hello.fragment.tar'], { cwd: chapter, encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`chapter 5 did not build:\n${built.stderr}`);
  const coldMs = performance.now() - cold0;

  const base = [{ tarPath: join(chapter, 'build-environment.fragment.tar'), label: 'build-environment.spec.yaml' }];
  const full = [...base, { tarPath: join(chapter, 'toolchain.fragment.tar'), label: 'toolchain.spec.yaml' }];
  const small = await assembleBuildEnvironment(base, { cacheDir, subject: 'bench' });
  const big = await assembleBuildEnvironment(full, { cacheDir, subject: 'bench' });

  // 1. Start per step.
  const step = { label: 'step', argv: ['/bin/sh', '-c', ':'] };
  const rows = [];
  rows.push(await measure('host: spawn /bin/sh -c :', runs, () => host(['/bin/sh', '-c', ':'])));
  for (const tool of ['bwrap', 'unshare']) {
    const hostEnv = { ...process.env, REDO_TS_SANDBOX: tool };
    const src = join(scratch, `src-${tool}`);
    mkdirSync(src);
    rows.push(await measure(`sandbox (${tool}): /bin/sh -c :`, runs, () => runInSandbox(small, step, { subject: 'bench', hostEnv, binds: [{ hostPath: src, sandboxPath: '/build/src', isWritable: true }], cwd: '/build/src' })));
  }
  console.log(`sandbox start per step (${runs} runs, mean per run)`);
  for (const row of rows) {
    console.log(`  ${row.label.padEnd(34)} wall ${row.wallMs.toFixed(1).padStart(6)} ms  cpu ${row.cpuMs.toFixed(1).padStart(6)} ms  over host: ${(row.wallMs - rows[0].wallMs).toFixed(1)} ms`);
  }

  // 2. Warm build with a 50-package environment.
  const steps = ['cc -static -O2 -o hello hello.c', 'install -D -m 0755 hello "$DESTDIR/usr/bin/hello"'];
  const warmRuns = 3;
  const buildRow = await measure('buildFragment (warm environment)', warmRuns, (i) => buildFragment(join(chapter, 'hello.spec.yaml'), join(scratch, `hello-${i}.tar`), { root: chapter, cacheDir, environment: full }));
  const stepsRow = await measure('the build steps alone, in the sandbox', warmRuns, async (i) => {
    const src = join(scratch, `steps-${i}`);
    const dest = join(scratch, `dest-${i}`);
    mkdirSync(src);
    mkdirSync(dest);
    cpSync(join(chapter, 'hello.c'), join(src, 'hello.c'));
    for (const text of steps) {
      await runInSandbox(big, { label: 'step', argv: ['/bin/sh', '-eu', '-c', text] }, {
        subject: 'bench', binds: [{ hostPath: src, sandboxPath: '/build/src', isWritable: true }, { hostPath: dest, sandboxPath: '/build/destdir', isWritable: true }],
        cwd: '/build/src', env: { DESTDIR: '/build/destdir' },
      });
    }
  });
  const hostSteps = await measure('the build steps alone, host gcc, no sandbox', warmRuns, async (i) => {
    const src = join(scratch, `host-${i}`);
    mkdirSync(src);
    cpSync(join(chapter, 'hello.c'), join(src, 'hello.c'));
    await host(['sh', '-c', `cd ${src} && cc -static -O2 -o hello hello.c && install -D -m 0755 hello ${src}/dest/usr/bin/hello`]);
  });
  const packages = spawnSync('grep', ['-c', '^  - name:', join(chapter, 'toolchain.lock.yaml')], { encoding: 'utf8' }).stdout.trim();
  console.log(`warm build of chapter 5's hello, environment of ${Number(packages) + 10} packages (${warmRuns} runs, mean; the first CLI build, cold: ${(coldMs / 1000).toFixed(1)} s)`);
  for (const row of [buildRow, stepsRow, hostSteps]) {
    console.log(`  ${row.label.padEnd(44)} wall ${row.wallMs.toFixed(0).padStart(6)} ms  cpu ${row.cpuMs.toFixed(0).padStart(6)} ms`);
  }
  console.log(`  buildFragment over its steps: ${(buildRow.wallMs - stepsRow.wallMs).toFixed(0)} ms wall, ${(buildRow.cpuMs - stepsRow.cpuMs).toFixed(0)} ms cpu`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
