// `redo-ts audit`: fixture images that each plant one kind of crud (test/fixtures/601-audit
// plus a spec and an image per row below) are flagged with the file, the layer and the
// spec that delivered it; a clean image, the default image and an allowed finding pass;
// `audit: true` fails the image's build.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFixture, copyProject, type ProjectCopy } from '../helpers/project-copy.js';

interface Crud {
  kind: string;
  /** Build steps (sh) and `files` rules of the spec planting it. */
  steps: string[];
  files: string[];
  /** The finding's path and a fragment of its detail. */
  path: string;
  detail: string;
}

const cruds: Crud[] = [
  { kind: 'shell-history', steps: ['mkdir -p "$DESTDIR/root"', `echo 'cat /etc/shadow' > "$DESTDIR/root/.bash_history"`], files: ['/root/.bash_history'], path: '/root/.bash_history', detail: 'history file' },
  {
    kind: 'private-key',
    steps: ['mkdir -p "$DESTDIR/etc/ssl/private"', `printf -- '-----BEGIN RSA PRIVATE KEY-----\\nMIIE\\n-----END RSA PRIVATE KEY-----\\n' > "$DESTDIR/etc/ssl/private/server.key"`],
    files: ['/etc/ssl/private/server.key'],
    path: '/etc/ssl/private/server.key',
    detail: 'holds "-----BEGIN RSA PRIVATE KEY-----"',
  },
  {
    kind: 'private-key',
    steps: ['mkdir -p "$DESTDIR/root/.ssh"', `printf -- 'comment\\n-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Bl\\n-----END OPENSSH PRIVATE KEY-----\\n' > "$DESTDIR/root/.ssh/id_ed25519"`],
    files: ['/root/.ssh/id_ed25519'],
    path: '/root/.ssh/id_ed25519',
    detail: 'holds "-----BEGIN OPENSSH PRIVATE KEY-----"',
  },
  { kind: 'vcs-folder', steps: ['mkdir -p "$DESTDIR/srv/app/.git"', 'echo "ref: refs/heads/main" > "$DESTDIR/srv/app/.git/HEAD"'], files: ['/srv/app/**'], path: '/srv/app/.git', detail: 'a .git version-control folder' },
  { kind: 'vcs-folder', steps: ['mkdir -p "$DESTDIR/srv/app/.svn"', 'echo 12 > "$DESTDIR/srv/app/.svn/format"'], files: ['/srv/app/**'], path: '/srv/app/.svn', detail: 'a .svn version-control folder' },
  { kind: 'vcs-folder', steps: ['mkdir -p "$DESTDIR/srv/app/.hg"', 'echo revlogv1 > "$DESTDIR/srv/app/.hg/requires"'], files: ['/srv/app/**'], path: '/srv/app/.hg', detail: 'a .hg version-control folder' },
  { kind: 'build-tool', steps: ['mkdir -p "$DESTDIR/usr/bin"', 'ln -s x86_64-linux-gnu-gcc-12 "$DESTDIR/usr/bin/cc"'], files: ['/usr/bin/cc'], path: '/usr/bin/cc', detail: 'a compiler' },
  { kind: 'build-tool', steps: ['mkdir -p "$DESTDIR/usr/lib/gcc/x86_64-linux-gnu/12"', 'echo elf > "$DESTDIR/usr/lib/gcc/x86_64-linux-gnu/12/cc1"'], files: ['/usr/lib/**'], path: '/usr/lib/gcc/x86_64-linux-gnu/12/cc1', detail: 'a compiler' },
  { kind: 'build-tool', steps: ['mkdir -p "$DESTDIR/usr/bin"', 'echo elf > "$DESTDIR/usr/bin/make"'], files: ['/usr/bin/make'], path: '/usr/bin/make', detail: 'make' },
  { kind: 'package-cache', steps: ['mkdir -p "$DESTDIR/var/cache/apt"', 'echo cache > "$DESTDIR/var/cache/apt/pkgcache.bin"'], files: ['/var/cache/**'], path: '/var/cache/apt/pkgcache.bin', detail: 'package manager cache' },
  { kind: 'package-cache', steps: ['mkdir -p "$DESTDIR/var/lib/apt/lists"', 'echo list > "$DESTDIR/var/lib/apt/lists/mirror_dists_bookworm_main_binary-amd64_Packages"'], files: ['/var/lib/**'], path: '/var/lib/apt/lists/mirror_dists_bookworm_main_binary-amd64_Packages', detail: 'downloaded list' },
  { kind: 'world-writable', steps: ['mkdir -p "$DESTDIR/srv"', 'echo data > "$DESTDIR/srv/data"'], files: ['/srv/data:0666'], path: '/srv/data', detail: 'mode 0666' },
  { kind: 'world-writable', steps: ['mkdir -p "$DESTDIR/srv/drop"'], files: ['/srv/drop:0777'], path: '/srv/drop', detail: 'without the sticky bit' },
  { kind: 'setuid', steps: ['mkdir -p "$DESTDIR/usr/bin"', 'echo elf > "$DESTDIR/usr/bin/helper"'], files: ['/usr/bin/helper:4755'], path: '/usr/bin/helper', detail: 'mode 4755' },
  { kind: 'setgid', steps: ['mkdir -p "$DESTDIR/usr/bin"', 'echo elf > "$DESTDIR/usr/bin/helper"'], files: ['/usr/bin/helper:2755'], path: '/usr/bin/helper', detail: 'mode 2755' },
  { kind: 'unknown-owner', steps: ['mkdir -p "$DESTDIR/srv"', 'echo data > "$DESTDIR/srv/data"'], files: ['/srv/data:0644:4242:0'], path: '/srv/data', detail: 'uid 4242 is not in' },
  { kind: 'unknown-owner', steps: ['mkdir -p "$DESTDIR/srv"', 'echo data > "$DESTDIR/srv/data"'], files: ['/srv/data:0644:1000:77'], path: '/srv/data', detail: 'gid 77 is not in' },
  { kind: 'symlink-escape', steps: ['mkdir -p "$DESTDIR/srv"', 'ln -s ../../../etc/shadow "$DESTDIR/srv/escape"'], files: ['/srv/escape'], path: '/srv/escape', detail: 'points to "../../../etc/shadow"' },
];

/** A files rule written `PATH[:MODE[:OWNER:GROUP]]`, as spec YAML lines. */
function fileRule(rule: string): string {
  const [path, mode, owner, group] = rule.split(':');
  return [`  - path: ${path}`, ...(mode ? [`    mode: "${mode}"`] : []), ...(owner ? [`    owner: "${owner}"`, `    group: "${group}"`] : [])].join('\n');
}

describe('redo-ts audit', () => {
  let project: ProjectCopy;
  const names = cruds.map((crud, index) => `crud-${String(index).padStart(2, '0')}-${crud.kind}`);

  beforeAll(async () => {
    project = copyFixture('601-audit');
    cruds.forEach((crud, index) => {
      const name = names[index]!;
      writeFileSync(
        join(project.dir, `${name}.spec.yaml`),
        [`name: ${name}`, 'version: "1"', 'build:', ...crud.steps.map((step) => `  - ${JSON.stringify(step)}`), 'files:', ...crud.files.map(fileRule), ''].join('\n'),
      );
      writeFileSync(join(project.dir, `${name}.yaml`), `layers: [base.fragment.tar, ${name}.fragment.tar]\n`);
    });
    const build = await project.redo(['-j2', 'clean.tar', ...names.map((name) => `${name}.tar`)]);
    expect(build.status, build.stderr).toBe(0);
  });
  afterAll(() => project?.remove());

  it('passes an image whose sticky /tmp, setgid folder, listed owners and inner symlink are fine', async () => {
    const result = await project.redo(['audit', 'clean.tar']);
    expect(result.stdout).toBe('audit: "clean.tar": no findings in 17 members of 2 layers\n');
    expect(result.status).toBe(0);
  });

  it.each(cruds.map((crud, index) => [names[index]!, crud] as const))('flags %s with its file, layer and spec, and exits 1', async (name, crud) => {
    const result = await project.redo(['audit', '--json', `${name}.tar`]);
    expect(result.status, result.stderr).toBe(1);
    const { findings } = JSON.parse(result.stdout) as { findings: Array<Record<string, string>> };
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ kind: crud.kind, path: crud.path, layer: `${name}.fragment.tar`, origin: `built by ${name}.spec.yaml` });
    expect(findings[0]!.detail).toContain(crud.detail);
  });

  it('prints one line per finding', async () => {
    const result = await project.redo(['audit', `${names[0]}.tar`]);
    expect(result.stdout).toBe(
      `audit: "${names[0]}.tar": 1 finding in 5 members of 2 layers\n` +
        `  shell-history  /root/.bash_history  layer ${names[0]}.fragment.tar  built by ${names[0]}.spec.yaml: a shell or REPL history file\n`,
    );
  });

  it('accepts findings the image description allows, by kind or kind and path', async () => {
    const setuid = names[cruds.findIndex((crud) => crud.kind === 'setuid')]!;
    writeFileSync(join(project.dir, `${setuid}.yaml`), `layers: [base.fragment.tar, ${setuid}.fragment.tar]\nauditAllow: ['setuid:/usr/bin/helper']\n`);
    const allowed = await project.redo(['audit', `${setuid}.tar`]);
    expect(allowed.status, allowed.stdout).toBe(0);
    expect(allowed.stdout).toBe(`audit: "${setuid}.tar": no findings in 6 members of 2 layers (1 allowed by ${setuid}.yaml)\n`);
    writeFileSync(join(project.dir, `${setuid}.yaml`), `layers: [base.fragment.tar, ${setuid}.fragment.tar]\nauditAllow: ['setuid:/usr/bin/other']\n`);
    expect((await project.redo(['audit', `${setuid}.tar`])).status).toBe(1);
    writeFileSync(join(project.dir, `${setuid}.yaml`), `layers: [base.fragment.tar, ${setuid}.fragment.tar]\nauditAllow: [setuids]\n`);
    const unknown = await project.redo(['audit', `${setuid}.tar`]);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toContain(`auditAllow names an unknown finding "setuids"`);
  });

  it('fails the build of an image that asks for the audit (audit: true), naming the finding', async () => {
    const key = names[cruds.findIndex((crud) => crud.kind === 'private-key')]!;
    writeFileSync(join(project.dir, `${key}.yaml`), `layers: [base.fragment.tar, ${key}.fragment.tar]\naudit: true\n`);
    const failed = await project.redo([`${key}.tar`]);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain(`redo: "${key}.tar": the audit found 1 problem`);
    expect(failed.stderr).toContain(`private-key  /etc/ssl/private/server.key  layer ${key}.fragment.tar  built by ${key}.spec.yaml`);
    writeFileSync(join(project.dir, `${key}.yaml`), `layers: [base.fragment.tar, ${key}.fragment.tar]\naudit: true\nauditAllow: [private-key]\n`);
    const passed = await project.redo([`${key}.tar`]);
    expect(passed.status, passed.stderr).toBe(0);
    expect(passed.stderr).toContain('audit: no findings (1 allowed)');
  });

  it('passes the default image', async () => {
    const defaultProject = copyProject('redo-ts-audit-default-');
    try {
      const result = await defaultProject.redo(['audit', 'image.tar']);
      expect(result.stdout).toBe('audit: "image.tar": no findings in 6 members of 2 layers\n');
      expect(result.status).toBe(0);
    } finally {
      defaultProject.remove();
    }
  });
});
