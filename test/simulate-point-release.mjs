#!/usr/bin/env node
// Runs test files as they would run after a Debian point release, on this machine's real
// apt indexes: in a scratch copy of the repository, every pinned Debian version (each
// `deb:NAME=VERSION` in a tracked text file outside test/ or in test/fixtures/, and every
// version of every committed lock file, tutorial's, examples', fixtures' alike) is aged
// to one the indexes do not list (`VERSION~old`; a versioned kernel also one ABI back),
// with an integrity no cache holds, as if the repository had been written against older
// indexes and run on a fresh machine. The copy is compiled and the named test files run
// there, one at a time.
//
//   node test/simulate-point-release.mjs test/e2e/tutorial-02-hello-rootfs.test.ts ...
//
// Prints what it aged, then vitest's output; exits with vitest's status. Removes the copy.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node test/simulate-point-release.mjs TEST_FILE...');
  process.exit(2);
}

const copy = mkdtempSync(join(tmpdir(), 'redo-ts-point-release-'));
let status = 1;
try {
  const listed = spawnSync('git', ['ls-files', '-z'], { cwd: repo, encoding: 'utf8' }).stdout.split('\0').filter((f) => f !== '');
  for (const file of listed) {
    mkdirSync(dirname(join(copy, file)), { recursive: true });
    cpSync(join(repo, file), join(copy, file), { verbatimSymlinks: true });
  }
  symlinkSync(join(repo, 'node_modules'), join(copy, 'node_modules'));

  // Every deb: pin of the tree, aged the same way everywhere (specs, READMEs, init's
  // template); test/ is left as written, but for the committed locks of its fixtures.
  const pins = new Map();
  const textFiles = listed.filter((file) => /\.(ya?ml|md|ts|mjs|do)$/.test(file) && !file.startsWith('test/'));
  for (const file of textFiles) {
    for (const match of readFileSync(join(copy, file), 'utf8').matchAll(/deb:([a-z0-9][a-z0-9+.-]*)=([0-9][^?\s`'"]*)/g)) {
      const [whole, name, version] = match;
      if (pins.has(whole) || version.endsWith('~old')) continue;
      const kernel = /^linux-image-([0-9.]+)-([0-9]+)-(.+)$/.exec(name);
      const agedName = kernel === null ? name : `linux-image-${kernel[1]}-${Number(kernel[2]) - 1}-${kernel[3]}`;
      pins.set(whole, `deb:${agedName}=${version}~old`);
    }
  }
  // The integrity of an aged version names a file no cache holds (as on a fresh machine,
  // where nothing was downloaded before): a use that is not refreshed fails, however
  // warm this machine's caches are.
  const integrities = new Map();
  const ageIntegrity = (integrity) => {
    if (!integrities.has(integrity)) integrities.set(integrity, `sha256-${createHash('sha256').update(`${integrity}~old`).digest('base64')}`);
    return integrities.get(integrity);
  };
  for (const file of textFiles.filter((f) => f.endsWith('.spec.yaml'))) {
    const text = readFileSync(join(copy, file), 'utf8');
    for (const match of text.matchAll(/^[ \t]*-?[ \t]*url: deb:\S+\n[ \t]+integrity: (sha256-\S+)$/gm)) ageIntegrity(match[1]);
  }
  let lockCount = 0;
  const locks = listed.filter((file) => file.endsWith('.lock.yaml') && (!file.startsWith('test/') || file.startsWith('test/fixtures/')));
  for (const file of locks) {
    // Every locked version, its pool file name and its integrity: a point release may move any.
    const whole = readFileSync(join(copy, file), 'utf8');
    const start = whole.indexOf('\npackages:\n');
    if (!/^lock-version: /m.test(whole) || /^ {4}mirror: |^mirror: /m.test(whole) || start < 0) continue;
    let text = whole.slice(start);
    text = text.replace(/^( {4}version: "?)([^"\n]*?)("?)$/gm, (_whole, lead, version, tail) => {
      lockCount += 1;
      return `${lead}${version}~old${tail}`;
    });
    text = text.replace(/^( {4}filename: .*\/[^_/\n]+_)([^_/\n]+)(_[a-z0-9]+\.deb)$/gm, '$1$2~old$3');
    text = text.replace(/^( {4}integrity: "?)(sha256-[^"\n]+)("?)$/gm, (_whole, lead, integrity, tail) => `${lead}${ageIntegrity(integrity)}${tail}`);
    writeFileSync(join(copy, file), whole.slice(0, start) + text);
  }
  for (const file of textFiles) {
    const path = join(copy, file);
    let text = readFileSync(path, 'utf8');
    for (const [from, to] of pins) text = text.split(from).join(to);
    for (const [from, to] of integrities) text = text.split(from).join(to);
    writeFileSync(path, text);
  }
  for (const [from, to] of pins) console.log(`aged: ${from} -> ${to}`);
  console.log(`aged: ${lockCount} locked versions in ${locks.length} committed lock files, ${integrities.size} integrities`);

  // A git index, so the tests' copyProject (git ls-files) sees the aged files.
  spawnSync('git', ['init', '-q'], { cwd: copy });
  spawnSync('git', ['add', '--pathspec-from-file=-', '--pathspec-file-nul'], { cwd: copy, input: listed.join('\0') });
  const tsc = spawnSync(join(copy, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: copy, stdio: 'inherit' });
  if (tsc.status !== 0) throw new Error('tsc failed in the copy');
  const vitest = spawnSync(join(copy, 'node_modules', '.bin', 'vitest'), ['run', '--maxWorkers=1', ...files], { cwd: copy, stdio: 'inherit' });
  status = vitest.status ?? 1;
} finally {
  rmSync(copy, { recursive: true, force: true });
}
process.exit(status);
