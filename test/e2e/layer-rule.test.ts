// rules/default.layer.tar.do.ts: a layer from a list of folders and tars, with owners and
// modes from a metadata table, rebuilt when a listed file changes, refusing conflicts.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entriesOfTar, pathText } from '../../dist/lib/index.js';
import { copyFixture, type ProjectCopy } from '../helpers/project-copy.js';

function listing(tar: string): string[] {
  return entriesOfTar(tar).map((e) => `${e.type} ${pathText(e.path)} ${e.mode.toString(8)} ${e.uid}:${e.gid}`);
}

describe('default.layer.tar.do.ts', () => {
  let project: ProjectCopy;
  beforeAll(() => {
    project = copyFixture('501-layer-list');
  });
  afterAll(() => project?.remove());

  it('merges a folder (metadata from NAME.meta) and another layer into one sorted tar', async () => {
    const build = await project.redo(['app.layer.tar'], { umask: 0o077 });
    expect(build.status, build.stderr).toBe(0);
    expect(listing(join(project.dir, 'app.layer.tar'))).toEqual([
      'directory etc 755 0:0',
      'file etc/motd 640 0:42',
      'directory usr 755 0:0',
      'directory usr/bin 755 0:0',
      'file usr/bin/tool 755 0:0',
    ]);
  });

  it('rebuilds when a file of a listed folder changes, and not otherwise', async () => {
    const before = project.sha256('app.layer.tar');
    const again = await project.redo(['app.layer.tar']);
    expect(again.stderr).not.toMatch(/^redo\s/m);
    writeFileSync(join(project.dir, 'extra/usr/bin/tool'), '#!/bin/sh\necho tool 2\n');
    const changed = await project.redo(['app.layer.tar']);
    expect(changed.status, changed.stderr).toBe(0);
    expect(changed.stderr).toMatch(/^redo\s+extra\.layer\.tar\s/m);
    expect(changed.stderr).toMatch(/^redo\s+app\.layer\.tar\s/m);
    expect(project.sha256('app.layer.tar')).not.toBe(before);
  });

  it('rebuilds when a file is added to or removed from a listed folder (its listing is a dependency)', async () => {
    expect((await project.redo(['app.layer.tar'])).status).toBe(0);
    mkdirSync(join(project.dir, 'extra/usr/share'), { recursive: true });
    writeFileSync(join(project.dir, 'extra/usr/share/added'), 'new\n');
    const added = await project.redo(['app.layer.tar']);
    expect(added.status, added.stderr).toBe(0);
    expect(listing(join(project.dir, 'app.layer.tar'))).toContain('file usr/share/added 644 0:0');
    rmSync(join(project.dir, 'extra/usr/share'), { recursive: true });
    const removed = await project.redo(['app.layer.tar']);
    expect(removed.status, removed.stderr).toBe(0);
    expect(listing(join(project.dir, 'app.layer.tar')).join('\n')).not.toContain('usr/share');
  });

  it('refuses a path two inputs deliver differently, naming both, and keeps the old layer', async () => {
    const before = project.sha256('app.layer.tar');
    writeFileSync(join(project.dir, 'app.layer'), 'rootfs/\nextra.layer.tar\nother.layer.tar\n');
    writeFileSync(join(project.dir, 'other.layer'), 'rootfs/\n');
    // other.layer.tar has etc/motd with default metadata (0644 0:0), app.meta says 0640 0:42.
    const conflict = await project.redo(['app.layer.tar']);
    expect(conflict.status).toBe(1);
    expect(conflict.stderr).toMatch(/"etc\/motd": delivered twice with different/);
    expect(conflict.stderr).toContain('other.layer.tar');
    expect(project.sha256('app.layer.tar')).toBe(before);
  });

  it('says which list is missing', async () => {
    const missing = await project.redo(['nothing.layer.tar']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('no layer list "nothing.layer"');
  });
});

describe('default.tar.do.ts: a path in two layers of one image', () => {
  let project: ProjectCopy;
  beforeAll(() => {
    project = copyFixture('501-layer-list');
  });
  afterAll(() => project?.remove());

  it('is refused, naming the path and both layers, and no image is written', async () => {
    const result = await project.redo(['both.tar']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('redo: "usr/bin/tool": delivered by two layers of one image');
    expect(result.stderr).toContain('lower: "extra.layer.tar"');
    expect(result.stderr).toContain('upper: "app.layer.tar"');
    expect(existsSync(join(project.dir, 'both.tar'))).toBe(false);
  });

  it('is allowed when the description says allowOverlap: true', async () => {
    writeFileSync(join(project.dir, 'both.yaml'), `allowOverlap: true\n${readFileSync(join(project.dir, 'both.yaml'), 'utf8')}`);
    const result = await project.redo(['both.tar']);
    expect(result.status, result.stderr).toBe(0);
    expect(existsSync(join(project.dir, 'both.tar'))).toBe(true);
  });

  it('points at the line of a bad field in the description', async () => {
    writeFileSync(join(project.dir, 'both.yaml'), 'layers:\n  - app.layer.tar\ngzip: maybe\n');
    const result = await project.redo(['both.tar']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('both.yaml:3: gzip: expected true or false');
  });
});
