// Licences of a real Debian image's packages, as scanners see them: machine-readable
// copyright files normalised to SPDX ids (Apache-2 is Apache-2.0), the others derived
// from their licence names and common-licenses references (libc6: LGPL-2.1+ and GPL-2+),
// a symlinked doc folder (libgcc-s1 -> gcc-12-base) followed; at most 2 NOASSERTION.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot, runCli } from '../helpers/rig.js';

const scratch = mkdtempSync(join(tmpdir(), 'redo-ts-debian-licences-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface SpdxPackage { name: string; licenseDeclared: string; externalRefs?: Array<{ referenceLocator: string }> }

describe('the SBOM of an nginx image', () => {
  it('gives nearly every Debian package an SPDX licence', async () => {
    const dir = join(scratch, 'project');
    mkdirSync(join(dir, 'targets'), { recursive: true });
    cpSync(join(repoRoot, 'rules'), join(dir, 'rules'), { recursive: true });
    writeFileSync(join(dir, 'package.json'), '{"private": true}\n');
    writeFileSync(join(dir, 'targets', 'nginx.spec.yaml'), 'name: nginx\nversion: "1"\narchitecture: amd64\npackages:\n  - nginx\n  - base-files\nexclude: [/usr/share/man/**, /usr/share/locale/**]\n');
    writeFileSync(join(dir, 'targets', 'nginx.yaml'), 'tags: [localhost/nginx:1]\nallowMissingLibraries: true\nlayers: [nginx.fragment.tar]\n');
    expect((await runCli(dir, ['lock'])).code).toBe(0);
    const env = { REDO_TS_CACHE: join(scratch, 'cache') };
    const sbom = await runCli(dir, ['sbom', 'targets/nginx.tar'], { env });
    expect(sbom.code, sbom.stderr).toBe(0);
    const packages = (JSON.parse(sbom.stdout) as { packages: SpdxPackage[] }).packages
      .filter((p) => p.externalRefs?.some((ref) => ref.referenceLocator.startsWith('pkg:deb/')));
    expect(packages.length).toBeGreaterThan(25);
    const licence = (name: string): string | undefined => packages.find((p) => p.name === name)?.licenseDeclared;
    const unknown = packages.filter((p) => p.licenseDeclared === 'NOASSERTION').map((p) => p.name);
    expect(unknown.length, `NOASSERTION: ${unknown.join(', ')}`).toBeLessThanOrEqual(2);
    expect(licence('libc6')).toBe('LGPL-2.1-or-later AND GPL-2.0-or-later');
    expect(licence('base-files')).toBe('GPL-2.0-or-later');
    expect(licence('libgcc-s1')).toBe(licence('gcc-12-base'));
    expect(licence('libcom-err2')).toContain('Apache-2.0');
    expect(packages.map((p) => p.licenseDeclared).join(' ')).not.toContain('LicenseRef-Apache-2');
  });
});
