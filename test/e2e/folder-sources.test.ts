// Folder sources: `file:` naming a project folder is copied whole into the build folder,
// tracked by the content of every file in it, and rebuilt when one changes. The build
// steps run sandboxed over the tests' build environment (busybox-static + coreutils).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { entriesOfTar, readEntryBytes } from '../../lib/image/tar.js';
import { buildFragment } from '../../lib/sources/fragment.js';
import { integrityOfFolder } from '../../lib/sources/folder.js';
import type { EnvironmentPart } from '../../lib/sandbox/environment.js';
import { copyBuildEnvironment, testBuildEnvironment } from '../helpers/build-environment.js';
import { copyWithRules, runCli } from '../helpers/rig.js';

const spec = `name: app
version: "1"
sources:
  - url: file:app
    integrity: project
build:
  - mkdir -p "$DESTDIR/srv" && cp -R app "$DESTDIR/srv/app"
files:
  - path: /srv/app
`;

function makeApp(project: string): void {
  mkdirSync(join(project, 'targets'), { recursive: true });
  mkdirSync(join(project, 'app', 'lib', 'deep'), { recursive: true });
  writeFileSync(join(project, 'package.json'), '{}\n');
  writeFileSync(join(project, 'app', 'main.py'), 'import lib\n');
  writeFileSync(join(project, 'app', 'lib', '__init__.py'), 'x = 1\n');
  writeFileSync(join(project, 'app', 'lib', 'deep', 'run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(project, 'app', 'lib', 'deep', 'run.sh'), 0o755);
  symlinkSync('main.py', join(project, 'app', 'entry.py'));
  writeFileSync(join(project, 'targets', 'app.spec.yaml'), spec);
}

let environment: EnvironmentPart[];
beforeAll(async () => {
  environment = await testBuildEnvironment();
});

describe('folder sources', () => {
  let project: string;
  beforeEach(() => {
    project = mkdtempSync(join(tmpdir(), 'redo-ts-folder-'));
    makeApp(project);
  });
  afterEach(() => rmSync(project, { recursive: true, force: true }));

  it('copies the folder whole into the build folder, with its subfolders, executable bits and symlinks', async () => {
    const out = join(project, 'app.fragment.tar');
    const result = await buildFragment(join(project, 'targets/app.spec.yaml'), out, { root: project, cacheDir: join(project, '.cache'), environment });
    const entries = entriesOfTar(out);
    const byPath = new Map(entries.map((entry) => [entry.path.toString(), entry]));
    expect([...byPath.keys()].sort()).toEqual([
      'srv', 'srv/app', 'srv/app/entry.py', 'srv/app/lib', 'srv/app/lib/__init__.py', 'srv/app/lib/deep', 'srv/app/lib/deep/run.sh', 'srv/app/main.py',
    ]);
    expect(byPath.get('srv/app/lib/deep/run.sh')!.mode).toBe(0o755);
    expect(byPath.get('srv/app/main.py')!.mode).toBe(0o644);
    expect(byPath.get('srv/app/entry.py')!.type).toBe('symlink');
    expect(readEntryBytes(byPath.get('srv/app/lib/__init__.py')!)!.toString()).toBe('x = 1\n');
    // Its provenance is the digest of the whole tree.
    expect(result.sources).toEqual([expect.objectContaining({ kind: 'file', name: 'app', isProjectFile: true, integrity: integrityOfFolder(join(project, 'app')) })]);
  });

  it('gives a digest that changes with any file, name or executable bit, and only then', () => {
    const folder = join(project, 'app');
    const first = integrityOfFolder(folder);
    expect(integrityOfFolder(folder)).toBe(first);
    writeFileSync(join(folder, 'lib', '__init__.py'), 'x = 2\n');
    const edited = integrityOfFolder(folder);
    expect(edited).not.toBe(first);
    writeFileSync(join(folder, 'lib', 'new.py'), '');
    const added = integrityOfFolder(folder);
    expect(added).not.toBe(edited);
    chmodSync(join(folder, 'lib', 'new.py'), 0o755);
    expect(integrityOfFolder(folder)).not.toBe(added);
  });

  it('a folder source with a pin instead of `integrity: project` is refused with a hint', async () => {
    writeFileSync(join(project, 'targets', 'app.spec.yaml'), spec.replace('integrity: project', 'integrity: sha256-WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM='));
    await expect(buildFragment(join(project, 'targets/app.spec.yaml'), join(project, 'out.tar'), { root: project, cacheDir: join(project, '.cache'), environment }))
      .rejects.toMatchObject({
        code: 'ERR_SPEC_INVALID',
        headline: 'redo: "targets/app.spec.yaml": source "file:app": is a folder, and a folder cannot have a pin',
        hint: expect.stringContaining('`integrity: project`'),
      });
  });
});

describe('folder sources through the shared rule', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A project with the app folder and the shared rules; its build environment env. */
  function ruleProject(): NodeJS.ProcessEnv {
    const empty = mkdtempSync(join(tmpdir(), 'redo-ts-folder-fixture-'));
    dir = copyWithRules(empty, 'redo-ts-folder-rule-');
    rmSync(empty, { recursive: true, force: true });
    makeApp(dir);
    copyBuildEnvironment(join(dir, 'targets'), join(dir, '.cache'));
    return { REDO_TS_CACHE: join(dir, '.cache') };
  }

  /** The fragment's members below srv/app, by path, with their mode. */
  function shipped(): Map<string, number> {
    const entries = entriesOfTar(join(dir, 'targets/app.fragment.tar')).filter((entry) => entry.path.toString().startsWith('srv/app/'));
    return new Map(entries.map((entry) => [entry.path.toString().slice('srv/app/'.length), entry.mode]));
  }

  it('a file added, removed or renamed anywhere in the folder, an empty subfolder or a chmod +x makes the fragment out of date, for ood and --why too', async () => {
    const env = ruleProject();
    const build = async (): Promise<string> => {
      const result = await runCli(dir, ['targets/app.fragment.tar'], { env });
      expect(result.code, result.stderr).toBe(0);
      return result.stderr;
    };
    /** What ood and --why say now, then the build: all three must agree that it rebuilds. */
    const expectStaleThenBuild = async (): Promise<Map<string, number>> => {
      const ood = await runCli(dir, ['ood'], { env });
      expect(ood.stdout.split('\n')).toContain('targets/app.fragment.tar');
      const why = await runCli(dir, ['--why', 'targets/app.fragment.tar'], { env });
      expect(why.stdout + why.stderr).toContain('changed: app');
      expect(await build()).toContain('fragment:');
      return shipped();
    };
    await build();
    expect(shipped().has('lib/added.py')).toBe(false);

    writeFileSync(join(dir, 'app', 'lib', 'added.py'), 'y = 2\n');
    expect((await expectStaleThenBuild()).has('lib/added.py')).toBe(true);
    // Up to date again: nothing runs, ood lists nothing.
    expect(await build()).not.toContain('fragment:');
    expect((await runCli(dir, ['ood'], { env })).stdout).toBe('');

    rmSync(join(dir, 'app', 'lib', 'added.py'));
    expect((await expectStaleThenBuild()).has('lib/added.py')).toBe(false);

    renameSync(join(dir, 'app', 'lib', 'deep', 'run.sh'), join(dir, 'app', 'lib', 'deep', 'go.sh'));
    const renamed = await expectStaleThenBuild();
    expect(renamed.has('lib/deep/run.sh')).toBe(false);
    expect(renamed.get('lib/deep/go.sh')).toBe(0o755);

    mkdirSync(join(dir, 'app', 'empty'));
    expect((await expectStaleThenBuild()).has('empty')).toBe(true);

    chmodSync(join(dir, 'app', 'main.py'), 0o755);
    expect((await expectStaleThenBuild()).get('main.py')).toBe(0o755);
  }, 300_000);

  it('a file added to a subfolder is seen after a no-op answered by the no-op memo', async () => {
    const env = ruleProject();
    const first = await runCli(dir, ['targets/app.fragment.tar'], { env });
    expect(first.code, first.stderr).toBe(0);
    // Stats younger than two seconds are not trusted: wait, so the next no-op writes the memo.
    await new Promise((done) => setTimeout(done, 2_100));
    for (let i = 0; i < 2; i += 1) {
      const again = await runCli(dir, ['targets/app.fragment.tar'], { env });
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).not.toContain('fragment:');
    }
    expect(existsSync(join(dir, '.redo', 'no-op.json'))).toBe(true);
    writeFileSync(join(dir, 'app', 'lib', 'deep', 'late.txt'), 'late\n');
    const added = await runCli(dir, ['targets/app.fragment.tar'], { env });
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toContain('fragment:');
    expect(shipped().has('lib/deep/late.txt')).toBe(true);
  }, 300_000);

  it('rebuilds the fragment when a file in the folder (or a subfolder) changes, and not otherwise', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'redo-ts-folder-fixture-'));
    dir = copyWithRules(empty, 'redo-ts-folder-rule-');
    rmSync(empty, { recursive: true, force: true });
    makeApp(dir);
    copyBuildEnvironment(join(dir, 'targets'), join(dir, '.cache'));
    const env = { REDO_TS_CACHE: join(dir, '.cache') };
    const first = await runCli(dir, ['targets/app.fragment.tar'], { env });
    expect(first.code, first.stderr).toBe(0);
    const again = await runCli(dir, ['targets/app.fragment.tar'], { env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain('fragment:');
    writeFileSync(join(dir, 'app', 'lib', 'deep', 'run.sh'), '#!/bin/sh\necho changed\n');
    const edited = await runCli(dir, ['targets/app.fragment.tar'], { env });
    expect(edited.code, edited.stderr).toBe(0);
    expect(edited.stderr).toContain('fragment:');
    const bytes = entriesOfTar(join(dir, 'targets/app.fragment.tar')).find((entry) => entry.path.toString() === 'srv/app/lib/deep/run.sh')!;
    expect(readEntryBytes(bytes)!.toString()).toContain('changed');
  });
});
