// sbom, audit and origin of a multi-platform image (`platforms:`, "${arch}" in its layer
// paths) describe its first platform, the image NAME.tar holds, instead of failing on
// the unexpanded layer path.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFixture, type ProjectCopy } from '../helpers/project-copy.js';

describe('inventory of a multi-platform image', () => {
  let project: ProjectCopy;
  beforeAll(async () => {
    project = copyFixture('603-multi-arch');
    const built = await project.redo(['image.tar']);
    expect(built.status, built.stderr).toBe(0);
  });
  afterAll(() => project?.remove());

  it('sbom lists the first platform\'s files under the docker archive\'s config digest', async () => {
    const result = await project.redo(['sbom', 'image.tar']);
    expect(result.stderr).not.toContain('${arch}');
    expect(result.status, result.stderr).toBe(0);
    const sbom = JSON.parse(result.stdout) as { documentNamespace: string; files: { fileName: string }[] };
    expect(sbom.files.map((file) => file.fileName).sort()).toEqual(['./etc/arch', './usr/bin/greet']);
    const manifest = spawnSync('tar', ['-xOf', join(project.dir, 'image.tar'), 'manifest.json'], { encoding: 'utf8' });
    const config = (JSON.parse(manifest.stdout) as { Config: string }[])[0]!.Config.replace(/\.json$/, '').replace(/^blobs\/sha256\//, '');
    expect(sbom.documentNamespace.endsWith(config)).toBe(true);
  });

  it('audit and origin read the first platform\'s layers', async () => {
    const audit = await project.redo(['audit', 'image.tar']);
    expect(audit.stdout + audit.stderr).toContain('audit: "image.tar": no findings in 5 members of 2 layers');
    expect(audit.status).toBe(0);
    const origin = await project.redo(['origin', 'image.tar', '/etc/arch']);
    expect(origin.status, origin.stderr).toBe(0);
    expect(origin.stdout).toContain('arch-amd64.layer.tar');
    expect(origin.stdout).toContain('projectFile: arch-amd64/etc/arch');
  });
});
