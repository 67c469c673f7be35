// bench/layer: builds a layer and its sha256 from a generated tree with redo-ts (to
// /dev/null and to a file) and measures it in one hyperfine run beside
// `tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - DIR | openssl dgst -sha256`
// (the anchor issue 20 sets), `... | tee FILE | openssl dgst -sha256` (the same, writing the
// layer to a file as redo-ts does), `... | sha256sum` and `node -e 0`, printing median wall
// seconds and mean CPU seconds (user + system, children included: on a shared, loaded
// machine CPU is the figure to compare) with their ratios to tar | openssl.
//
// Usage: npm run build && node bench/layer.mjs [--small-files N] [--folders N] [--large-files N] [--large-mib N] [--runs N]
// (needs hyperfine: apt-get install hyperfine)
// Default tree: 12,000 files of 1-16 KiB in 120 folders plus 4 files of 25 MiB (~200 MB),
// generated once under os.tmpdir() and reused. The full tree is
// --small-files 20000 --folders 200 (~294 MB of tar).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

const tarFlags = 'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner';
const layerFile = join(tmpdir(), 'redo-ts-bench-layer.tar');
const anchorFile = join(tmpdir(), 'redo-ts-bench-layer-anchor.tar');
const commands = [
  ['tar \\| openssl dgst -sha256', `sh -c '${tarFlags} -C ${tree} -cf - . | openssl dgst -sha256'`],
  ['tar \\| tee FILE \\| openssl dgst -sha256 (writes the layer too)', `sh -c '${tarFlags} -C ${tree} -cf - . | tee ${anchorFile} | openssl dgst -sha256'`],
  ['tar \\| sha256sum', `sh -c '${tarFlags} -C ${tree} -cf - . | sha256sum'`],
  ['redo-ts writeTar -> /dev/null (sha256 while streaming)', `node ${join(here, 'layer-build.mjs')} ${tree} /dev/null`],
  ['redo-ts writeTar -> layer file', `node ${join(here, 'layer-build.mjs')} ${tree} ${layerFile}`],
  ['node -e 0', 'node -e 0'],
];
const exported = join(tmpdir(), `redo-ts-bench-layer-${process.pid}.json`);
// Every run writes a new file, as a build writes its output to a fresh temporary path
// (overwriting last run's 200 MB would add the kernel's truncation to both sides).
// NODE_EXTRA_CA_CERTS makes every Node start load a CA bundle (about 40 ms of CPU on
// this machine, none of it the writer's): it is left out of the runs, and the cost is
// shown on the last row.
const environment = { ...process.env };
const extraCaCerts = environment['NODE_EXTRA_CA_CERTS'];
delete environment['NODE_EXTRA_CA_CERTS'];
if (extraCaCerts !== undefined) commands.push(['node -e 0 with NODE_EXTRA_CA_CERTS (as set here)', `env NODE_EXTRA_CA_CERTS=${extraCaCerts} node -e 0`]);
const run = spawnSync('hyperfine', ['-N', '--warmup', '1', '--runs', String(options.runs), '--prepare', `rm -f ${layerFile} ${anchorFile}`, '--export-json', exported, ...commands.map(([, command]) => command)], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'inherit'], env: environment });
if (run.status !== 0) throw new Error('hyperfine failed (apt-get install hyperfine)');
const results = JSON.parse(readFileSync(exported, 'utf8')).results;
rmSync(exported, { force: true });
spawnSync('node', [join(here, 'layer-build.mjs'), tree, layerFile], { env: environment });
const tarBytes = statSync(layerFile).size;
rmSync(layerFile, { force: true });
rmSync(anchorFile, { force: true });
const rows = results.map((result, i) => ({ name: commands[i][0], wall: result.median, cpu: result.user + result.system }));
const anchor = rows[0];
console.log(`tree: ${tree}`);
console.log(`layer: ${(tarBytes / 1e6).toFixed(0)} MB of tar, ${options['small-files']} small files in ${options.folders} folders + ${options['large-files']} x ${options['large-mib']} MiB; hyperfine, ${options.runs} runs each, one run of this script; each run writes a new file; NODE_EXTRA_CA_CERTS ${extraCaCerts === undefined ? 'not set' : 'unset for the runs (see the last row)'}`);
console.log('| pipeline | wall s (median) | CPU s (mean) | wall / tar\\|openssl | CPU / tar\\|openssl |');
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.name} | ${row.wall.toFixed(2)} | ${row.cpu.toFixed(2)} | ${(row.wall / anchor.wall).toFixed(2)} | ${(row.cpu / anchor.cpu).toFixed(2)} |`);
const teeAnchor = rows[1];
const toFile = rows[4];
console.log(`redo-ts -> layer file against tar | tee FILE | openssl: wall x${(toFile.wall / teeAnchor.wall).toFixed(2)}, CPU x${(toFile.cpu / teeAnchor.cpu).toFixed(2)}`);

// The main thread's CPU (the critical path: the sha256 and the file writes run on a
// worker thread) beside the process's, median of the same number of runs.
const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [name, out] of [['/dev/null', '/dev/null'], ['layer file', layerFile]]) {
  const main = [];
  const all = [];
  for (let i = 0; i < options.runs; i++) {
    rmSync(layerFile, { force: true });
    const run = spawnSync('node', [join(here, 'layer-build.mjs'), tree, out, '--thread-cpu'], { encoding: 'utf8', env: environment });
    const [mainSeconds, processSeconds] = run.stdout.trim().split(' ').map(Number);
    main.push(mainSeconds);
    all.push(processSeconds);
  }
  rmSync(layerFile, { force: true });
  const mainCpu = median(main);
  console.log(`redo-ts writeTar -> ${name}: main thread CPU ${mainCpu.toFixed(2)} s (x${(mainCpu / anchor.cpu).toFixed(2)} tar|openssl CPU), process CPU ${median(all).toFixed(2)} s`);
}
