#!/usr/bin/env node
// Runs test files as they would run after a Debian point release, on this machine's real
// apt indexes: in a scratch copy of the repository, every pinned Debian version (each
// `deb:NAME=VERSION` in any tracked text file, and each `+debNNuN` version of the
// committed lock files) is aged to one the indexes do not list (`VERSION~old`; a
// versioned kernel also one ABI back), as if the repository had been written against
// older indexes. The copy is compiled and the named test files run there, one at a time.
//
//   node test/simulate-point-release.mjs test/e2e/tutorial-02-hello-rootfs.test.ts ...
//
// Prints what it aged, then vitest's output; exits with vitest's status. Removes the copy.
import { spawnSync } from 'node:child_process';
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

  // Every deb: pin of the tree, aged the same way everywhere (specs, READMEs, init's template).
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
  let lockCount = 0;
  for (const file of textFiles) {
    const path = join(copy, file);
    let text = readFileSync(path, 'utf8');
    for (const [from, to] of pins) text = text.split(from).join(to);
    if (file.endsWith('.lock.yaml')) {
      // Point releases move the +debNNuN versions: age those, and their pool file names.
      text = text.replace(/^( {4}version: "?)([^"\n]*\+deb[0-9]+u[0-9]+[^"\n]*?)("?)$/gm, (_whole, lead, version, tail) => {
        lockCount += 1;
        return `${lead}${version}~old${tail}`;
      });
      text = text.replace(/^( {4}filename: .*_)([^_]*\+deb[0-9]+u[0-9]+[^_]*)(_[a-z0-9]+\.deb)$/gm, '$1$2~old$3');
    }
    writeFileSync(path, text);
  }
  for (const [from, to] of pins) console.log(`aged: ${from} -> ${to}`);
  console.log(`aged: ${lockCount} locked versions in the committed lock files`);

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
