// bench/debian/compare-rootfs: the file list of a redo-ts rootfs (a fragment with dpkg's
// database) against mmdebstrap's rootfs for a superset of its packages.
// Usage: node compare-rootfs.mjs MMDEBSTRAP.tar OURS.tar
// Prints: paths of our packages that mmdebstrap installed and we did not (by top folder:
// what the excludes left out), paths we have that mmdebstrap lacks, and paths no package
// owns in mmdebstrap's rootfs (maintainer-script output) that we lack.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';

const [mmTar, oursTar] = process.argv.slice(2);
const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-compare-'));
try {
  const unpack = (tar, name) => {
    const dir = join(scratch, name);
    execFileSync('mkdir', ['-p', dir]);
    execFileSync('tar', ['-xf', tar, '-C', dir, '--no-same-owner', '--exclude=./dev/*', '--exclude=dev/*']);
    return dir;
  };
  const mm = unpack(mmTar, 'mm');
  const ours = unpack(oursTar, 'ours');
  const walk = (root) => {
    const out = new Set();
    const visit = (dir) => {
      for (const name of readdirSync(join(root, dir))) {
        const path = `${dir}/${name}`;
        out.add(path);
        if (lstatSync(join(root, path)).isDirectory()) visit(path);
      }
    };
    visit('');
    return out;
  };
  /** A path with the rootfs's own symlinked parent folders resolved (merged /usr). */
  const physical = (root, path) => {
    const parts = path.split('/').filter(Boolean);
    let done = '';
    for (const [index, part] of parts.entries()) {
      const next = `${done}/${part}`;
      let stats;
      try { stats = lstatSync(join(root, next)); } catch { return `${next}/${parts.slice(index + 1).join('/')}`.replace(/\/$/, ''); }
      if (stats.isSymbolicLink() && index < parts.length - 1) {
        const target = readlinkSync(join(root, next));
        done = target.startsWith('/') ? posix.normalize(target).replace(/\/$/, '') : posix.normalize(`${done}/${target}`);
      } else done = next;
    }
    return done;
  };
  const packagesOf = (root) => readFileSync(join(root, 'var/lib/dpkg/status'), 'utf8').split('\n').filter((l) => l.startsWith('Package: ')).map((l) => l.slice(9));
  const owned = (root, names) => {
    const paths = new Set();
    for (const name of names) {
      for (const file of [`${name}.list`, `${name}:amd64.list`]) {
        let text;
        try { text = readFileSync(join(root, 'var/lib/dpkg/info', file), 'utf8'); } catch { continue; }
        for (const line of text.split('\n')) if (line !== '' && line !== '/.') paths.add(physical(root, line));
      }
    }
    return paths;
  };
  const ourPackages = packagesOf(ours);
  const mmPackages = packagesOf(mm);
  const mmAll = walk(mm);
  const ourAll = walk(ours);
  const mmOurs = owned(mm, ourPackages);
  const mmOwnedAny = owned(mm, mmPackages);
  const isDb = (p) => p.startsWith('/var/lib/dpkg/') || p.startsWith('/var/lib/apt') || p.startsWith('/var/cache/') || p.startsWith('/var/log/apt');
  const missing = [...mmOurs].filter((p) => !ourAll.has(p) && mmAll.has(p));
  const byTop = new Map();
  for (const p of missing) {
    const key = p.split('/').slice(0, 4).join('/');
    byTop.set(key, (byTop.get(key) ?? 0) + 1);
  }
  const extra = [...ourAll].filter((p) => !mmAll.has(p) && !isDb(p));
  const generated = [...mmAll].filter((p) => !mmOwnedAny.has(p) && !isDb(p) && !ourAll.has(p));
  const pycs = (set) => [...set].filter((p) => p.endsWith('.pyc')).length;
  console.log(`\npackages: ours ${ourPackages.length}, mmdebstrap ${mmPackages.length} (${ourPackages.filter((p) => !mmPackages.includes(p)).length} of ours not in mmdebstrap's)`);
  console.log(`paths: ours ${ourAll.size}, mmdebstrap ${mmAll.size}; of our packages' paths mmdebstrap holds ${mmOurs.size}`);
  console.log(`pyc files: ours ${pycs(ourAll)}, mmdebstrap ${pycs(mmAll)}`);
  console.log(`our packages' paths we left out: ${missing.length}`);
  for (const [key, count] of [...byTop].sort((a, b) => b[1] - a[1]).slice(0, 8)) console.log(`  ${String(count).padStart(6)}  ${key}`);
  console.log(`paths we have that mmdebstrap lacks: ${extra.length}`);
  for (const p of extra.slice(0, 15)) console.log(`  ${p}`);
  console.log(`maintainer-script paths (no package owns them) in mmdebstrap that we lack: ${generated.length}`);
  for (const p of generated.slice(0, Number(process.env.SHOW ?? 25))) console.log(`  ${p}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
