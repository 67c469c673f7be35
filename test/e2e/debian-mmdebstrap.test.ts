// The bar for Debian images: the same system mmdebstrap makes. For each package set,
// `mmdebstrap --variant=essential --include=SET` (Debian's reproducible builder: apt and
// dpkg, maintainer scripts run) and a redo-ts spec listing the packages mmdebstrap
// installed, from the machine's apt suites, are compared path by path
// (test/helpers/rootfs-compare.ts); every difference must be one docs/debian.md lists
// with its reason. The suite runs all five sets of issue 21 (about 3.6 min of CPU in all,
// mmdebstrap included; the wall time is mostly mmdebstrap's downloads); set
// REDO_TS_MMDEBSTRAP_SETS=quick for python3 and curl + ca-certificates only, or to sets
// separated by `;` (`openjdk-17-jre-headless;redis-server`).
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { entriesOfTar, readEntryBytes } from '../../lib/image/tar.js';
import { compareRootfs, explain, readAllowedDifferences } from '../helpers/rootfs-compare.js';
import { repoRoot, runCli } from '../helpers/rig.js';

const allSets = [['python3'], ['curl', 'ca-certificates'], ['nginx-light'], ['openjdk-17-jre-headless'], ['redis-server']];
const wanted = process.env.REDO_TS_MMDEBSTRAP_SETS;
const sets = wanted === 'quick' ? allSets.slice(0, 2) : wanted !== undefined && wanted !== '' && wanted !== 'all' ? wanted.split(';').map((set) => set.trim().split(/\s+/)) : allSets;
const hasMmdebstrap = spawnSync('mmdebstrap', ['--version']).status === 0;
const epoch = '1700000000';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-mmdebstrap-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The machine's Debian suites as sources.list lines (the same suites `redo-ts lock` reads). */
function aptSources(): string[] {
  const listed = execFileSync('apt-get', ['indextargets', '--format', '$(BASE_URI)\t$(ORIGIN)\t$(TARGET_OF)'], { encoding: 'utf8' });
  const lines = new Set<string>();
  for (const line of listed.split('\n')) {
    const [base, origin] = line.split('\t');
    const match = /^(.*)\/dists\/([^/]+)\/$/.exec(base ?? '');
    if (origin === 'Debian' && match !== null) lines.add(`deb ${match[1]} ${match[2]} main`);
  }
  return [...lines].sort();
}

const seconds = (fromMs: number): string => ((Date.now() - fromMs) / 1000).toFixed(1);

describe.skipIf(!hasMmdebstrap)('the same system mmdebstrap makes', () => {
  for (const set of sets) {
    it(`${set.join(' + ')}: every difference is one docs/debian.md explains`, { timeout: 900_000 }, async () => {
      const name = set.join('-').replace(/[^a-z0-9-]/g, '');
      const work = join(scratch, name);
      mkdirSync(join(work, 'project', 'targets'), { recursive: true });
      const mmTar = join(work, 'mmdebstrap.tar');
      let started = Date.now();
      const mm = spawnSync('mmdebstrap', ['--quiet', '--variant=essential', `--include=${set.join(',')}`, 'bookworm', mmTar, ...aptSources()], {
        env: { ...process.env, SOURCE_DATE_EPOCH: epoch }, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
      });
      expect(mm.status, mm.stderr).toBe(0);
      const mmSeconds = seconds(started);
      const status = entriesOfTar(mmTar).find((entry) => entry.path.toString('latin1').replace(/^\.\//, '') === 'var/lib/dpkg/status')!;
      const packages = readEntryBytes(status)!.toString('utf8').split('\n\n').filter((p) => p.includes('Status: install ok installed'))
        .map((p) => /^Package: (.*)$/m.exec(p)![1]!).sort();

      // redo-ts: the packages mmdebstrap installed, listed, from the same suites.
      const project = join(work, 'project');
      cpSync(join(repoRoot, 'rules'), join(project, 'rules'), { recursive: true });
      writeFileSync(join(project, 'package.json'), '{"private": true}\n');
      writeFileSync(join(project, 'targets', 'set.spec.yaml'), `name: set\nversion: "1"\narchitecture: amd64\npackages:\n${packages.map((p) => `  - ${p}\n`).join('')}`);
      started = Date.now();
      const locked = await runCli(project, ['lock']);
      expect(locked.code, locked.stderr).toBe(0);
      const env = { REDO_TS_CACHE: join(scratch, 'cache'), SOURCE_DATE_EPOCH: epoch };
      const built = await runCli(project, ['targets/set.fragment.tar'], { env });
      expect(built.code, built.stderr).toBe(0);
      const coldSeconds = seconds(started);
      started = Date.now();
      const warm = await runCli(project, ['-f', 'targets/set.fragment.tar'], { env });
      expect(warm.code, warm.stderr).toBe(0);
      const warmSeconds = seconds(started);

      const differences = compareRootfs(mmTar, join(project, 'targets', 'set.fragment.tar'));
      const { unexplained, counts } = explain(differences, readAllowedDifferences(join(repoRoot, 'docs', 'debian.md')));
      const summary = [...counts].map(([row, count]) => `  ${count} x ${row.kind} ${row.glob}`);
      console.log([
        `${set.join(' + ')}: ${packages.length} packages; mmdebstrap ${mmSeconds} s; redo-ts lock + build ${coldSeconds} s (cache shared across sets), rebuild ${warmSeconds} s`,
        `  ${differences.length} differences, ${differences.length - unexplained.length} explained by docs/debian.md:`, ...summary,
      ].join('\n'));
      expect(unexplained.map((d) => `${d.kind} /${d.path}: ${d.detail}`)).toEqual([]);
    });
  }
});
if (!hasMmdebstrap) console.log('skipped the mmdebstrap comparisons: mmdebstrap is not installed (apt-get install mmdebstrap; .ci/run installs it)');
