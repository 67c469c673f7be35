// bench/layer: builds a layer and its sha256 from a generated tree and compares with
// `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - DIR | sha256sum`,
// printing wall times (median of RUNS), the ratio, and peak memory (/usr/bin/time -v).
//
// Usage: npm run build && node bench/layer.mjs [--small-files N] [--folders N] [--large-files N] [--large-mib N] [--runs N]
// Default tree: 12,000 files of 1-16 KiB in 120 folders plus 4 files of 25 MiB (~200 MB),
// generated once under os.tmpdir() and reused. The full tree is
// --small-files 20000 --folders 200 (~294 MB of tar).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const options = { 'small-files': 12000, folders: 120, 'large-files': 4, 'large-mib': 25, runs: 3 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const name = argv[i].replace(/^--/, '');
  if (!(name in options)) throw new Error(`unknown option ${argv[i]}`);
  options[name] = Number(argv[i + 1]);
}

const here = dirname(fileURLToPath(import.meta.url));
const tree = join(tmpdir(), `redo-ts-bench-layer-${options['small-files']}-${options.folders}-${options['large-files']}x${options['large-mib']}`);

/** Deterministic pseudo-random bytes (xorshift), so the tree is the same on every machine. */
function bytes(size, seed) {
  const out = Buffer.allocUnsafe(size);
  let x = seed | 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    out.writeInt32LE(x | 0, Math.min(i, size - 4));
  }
  return out;
}

if (!existsSync(tree)) {
  const partial = `${tree}.partial`;
  rmSync(partial, { recursive: true, force: true });
  for (let f = 0; f < options.folders; f++) mkdirSync(join(partial, `dir${String(f).padStart(3, '0')}`), { recursive: true });
  for (let i = 0; i < options['small-files']; i++) {
    const size = 1024 + ((i * 7919) % (15 * 1024));
    writeFileSync(join(partial, `dir${String(i % options.folders).padStart(3, '0')}`, `file${i}.dat`), bytes(size, i + 1));
  }
  const large = bytes(options['large-mib'] << 20, 99);
  for (let i = 0; i < options['large-files']; i++) {
    large[0] = i;
    writeFileSync(join(partial, `large${i}.bin`), large);
  }
  renameSync(partial, tree);
}

function measure(command, args) {
  const started = process.hrtime.bigint();
  const result = spawnSync('/usr/bin/time', ['-v', command, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (result.status !== 0) throw new Error(`${command} failed:\n${result.stderr}`);
  const peakKiB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(result.stderr)?.[1] ?? 0);
  return { seconds, peakKiB, stdout: result.stdout.trim() };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const pipeline = ['-c', `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$0" -cf - . | sha256sum`, tree];
// The anchor issue 20 sets: the same tar hashed with OpenSSL (SHA-NI where the CPU has it).
const opensslPipeline = ['-c', `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$0" -cf - . | openssl dgst -sha256`, tree];
const ours = [join(here, 'layer-build.mjs'), tree];
const layerFile = join(tmpdir(), 'redo-ts-bench-layer.tar');

// Warm the page cache once so every run reads from memory.
measure('sh', ['-c', `tar -C "$0" -cf - . > /dev/null`, tree]);
const rows = { tar: [], openssl: [], oursNull: [], oursFile: [] };
let peak = { tar: 0, oursNull: 0, oursFile: 0 };
let tarBytes = 0;
for (let run = 0; run < options.runs; run++) {
  const a = measure('sh', pipeline);
  rows.openssl.push(measure('sh', opensslPipeline).seconds);
  const b = measure('node', [...ours, '/dev/null']);
  const c = measure('node', [...ours, layerFile]);
  rows.tar.push(a.seconds);
  rows.oursNull.push(b.seconds);
  rows.oursFile.push(c.seconds);
  peak = { tar: Math.max(peak.tar, a.peakKiB), oursNull: Math.max(peak.oursNull, b.peakKiB), oursFile: Math.max(peak.oursFile, c.peakKiB) };
}
tarBytes = Number(spawnSync('stat', ['-c', '%s', layerFile], { encoding: 'utf8' }).stdout.trim());
rmSync(layerFile, { force: true });

const t = median(rows.tar);
const o = median(rows.openssl);
const n = median(rows.oursNull);
const f = median(rows.oursFile);
const mib = (kib) => `${(kib / 1024).toFixed(0)} MiB`;
console.log(`tree: ${tree}`);
console.log(`layer: ${(tarBytes / 1e6).toFixed(0)} MB of tar, ${options['small-files']} small files in ${options.folders} folders + ${options['large-files']} x ${options['large-mib']} MiB; median of ${options.runs} runs`);
console.log(`| pipeline | wall s | ratio to tar|sha256sum | ratio to tar|openssl | peak RSS |`);
console.log(`|---|---|---|---|---|`);
console.log(`| tar --sort=name ... -cf - DIR \\| sha256sum | ${t.toFixed(2)} | 1.00 | ${(t / o).toFixed(2)} | ${mib(peak.tar)} (tar and sha256sum: max of the two) |`);
console.log(`| tar --sort=name ... -cf - DIR \\| openssl dgst -sha256 | ${o.toFixed(2)} | ${(o / t).toFixed(2)} | 1.00 | |`);
console.log(`| redo-ts writeTar → /dev/null (sha256 while streaming) | ${n.toFixed(2)} | ${(n / t).toFixed(2)} | ${(n / o).toFixed(2)} | ${mib(peak.oursNull)} |`);
console.log(`| redo-ts writeTar → layer file | ${f.toFixed(2)} | ${(f / t).toFixed(2)} | ${(f / o).toFixed(2)} | ${mib(peak.oursFile)} |`);
