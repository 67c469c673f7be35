// `redo-ts sbom`: SPDX 2.3 and CycloneDX 1.6 documents of the default image and of the
// tutorial's Debian image, checked by the formats' own validators, against the files
// themselves, and for identical bytes from the same image.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTool } from '../helpers/clients.js';
import { copyFixture, copyProject, type ProjectCopy } from '../helpers/project-copy.js';
import { cycloneDxProblems, spdxProblems } from '../helpers/sbom-validators.js';
import { copyChapter, type ChapterCopy } from '../helpers/tutorial.js';

type Json = Record<string, any>;

const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

/**
 * The busybox-static pin of a copy's default image: the committed one, or the one the
 * copy uses once it has left the archive (test/helpers/deb-pins.ts).
 */
function busyboxPin(dir: string): { version: string; integrity: string; purl: string } {
  const match = /url: deb:busybox-static=(\S+)\?arch=amd64\n {4}integrity: (\S+)\n/.exec(readFileSync(join(dir, 'targets/busybox.spec.yaml'), 'utf8'))!;
  return { version: match[1]!, integrity: match[2]!, purl: `pkg:deb/debian/busybox-static@${match[1]!.replace(':', '%3A')}?arch=amd64&distro=debian-12` };
}

describe('redo-ts sbom on the default image', () => {
  let cache: string;
  let project: ProjectCopy;
  let spdxText: string;
  let cdxText: string;
  const env = (): NodeJS.ProcessEnv => ({ REDO_TS_CACHE: cache });

  beforeAll(async () => {
    cache = mkdtempSync(join(tmpdir(), 'redo-ts-sbom-cache-'));
    project = copyProject('redo-ts-sbom-a-');
    const spdx = await project.redo(['sbom', 'image.tar'], { env: env() });
    expect(spdx.status, spdx.stderr).toBe(0);
    spdxText = spdx.stdout;
    const cdx = await project.redo(['sbom', '--format', 'cyclonedx', 'image.tar'], { env: env() });
    expect(cdx.status, cdx.stderr).toBe(0);
    cdxText = cdx.stdout;
  });
  afterAll(() => {
    project?.remove();
    rmSync(cache, { recursive: true, force: true });
  });

  it('builds the image first, then prints an SPDX 2.3 document the published schema and the spec rules accept', () => {
    expect(spdxProblems(spdxText)).toEqual([]);
    const document = JSON.parse(spdxText) as Json;
    expect(document.creationInfo.created).toBe('1970-01-01T00:00:00Z');
    const busybox = document.packages.find((p: Json) => p.name === 'busybox-static');
    const pin = busyboxPin(project.dir);
    expect(busybox.versionInfo).toBe(pin.version);
    expect(busybox.externalRefs).toEqual([
      { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: pin.purl },
    ]);
    // The .deb's checksum is its pin, in hex.
    expect(busybox.checksums).toEqual([{ algorithm: 'SHA256', checksumValue: Buffer.from(pin.integrity.replace(/^sha256-/, ''), 'base64').toString('hex') }]);
    // busybox's copyright file is not machine-readable: the licence it names ("version 2 dated June, 1991") is derived, as scanners do.
    expect(busybox.licenseDeclared).toBe('GPL-2.0-only');
  });

  it('lists every file with the checksums of its bytes and the package or spec that delivered it', () => {
    const document = JSON.parse(spdxText) as Json;
    const byName = new Map<string, Json>(document.files.map((file: Json) => [file.fileName, file]));
    expect([...byName.keys()].sort()).toEqual(['./bin/busybox', './usr/bin/greet']);
    const busyboxBytes = execFileSync('tar', ['-xOf', join(project.dir, 'targets/busybox.fragment.tar'), 'bin/busybox'], { maxBuffer: 1 << 26 });
    expect(byName.get('./bin/busybox')!.checksums).toContainEqual({ algorithm: 'SHA256', checksumValue: sha256(busyboxBytes) });
    // greet is installed unchanged from the project's app/greet.sh.
    expect(byName.get('./usr/bin/greet')!.checksums).toContainEqual({ algorithm: 'SHA256', checksumValue: sha256(readFileSync(join(project.dir, 'app/greet.sh'))) });
    const nameOf = new Map<string, string>([...document.packages, ...document.files].map((e: Json) => [e.SPDXID, e.name ?? e.fileName]));
    const relations = document.relationships.map((r: Json) => `${nameOf.get(r.spdxElementId) ?? r.spdxElementId} ${r.relationshipType} ${nameOf.get(r.relatedSpdxElement)}`);
    expect(relations).toEqual(
      expect.arrayContaining([
        'SPDXRef-DOCUMENT DESCRIBES localhost/redo-ts/hello:latest',
        'localhost/redo-ts/hello:latest CONTAINS busybox-static',
        'localhost/redo-ts/hello:latest CONTAINS greet',
        'busybox-static CONTAINS ./bin/busybox',
        'greet CONTAINS ./usr/bin/greet',
        'greet GENERATED_FROM greet.sh',
        'greet DEPENDS_ON busybox',
      ]),
    );
  });

  it('prints a CycloneDX 1.6 document the CycloneDX library validates, with files nested under what delivered them', async () => {
    expect(await cycloneDxProblems(cdxText)).toEqual([]);
    const bom = JSON.parse(cdxText) as Json;
    expect(bom.metadata.component.type).toBe('container');
    expect(bom.metadata.timestamp).toBe('1970-01-01T00:00:00Z');
    const busybox = bom.components.find((c: Json) => c.name === 'busybox-static');
    expect(busybox.purl).toBe(busyboxPin(project.dir).purl);
    expect(busybox.components.map((c: Json) => c.name)).toEqual(['/bin/busybox']);
    const greet = bom.components.find((c: Json) => c.name === 'greet');
    expect(greet.components.map((c: Json) => c.name)).toEqual(['/usr/bin/greet']);
    expect(greet.pedigree.ancestors.map((c: Json) => c.name)).toEqual(['greet.sh']);
  });

  it('gives the same bytes again and from another folder; the time comes from SOURCE_DATE_EPOCH', async () => {
    const again = await project.redo(['sbom', '-o', 'sbom.spdx.json', 'image.tar'], { env: env() });
    expect(again.status, again.stderr).toBe(0);
    expect(readFileSync(join(project.dir, 'sbom.spdx.json'), 'utf8')).toBe(spdxText);
    const other = copyProject('redo-ts-sbom-b-other-');
    try {
      const elsewhere = await other.redo(['sbom', '--format', 'cyclonedx', 'image.tar'], { env: env(), umask: 0o077 });
      expect(elsewhere.status, elsewhere.stderr).toBe(0);
      expect(elsewhere.stdout).toBe(cdxText);
    } finally {
      other.remove();
    }
    const dated = await project.redo(['sbom', 'image.tar'], { env: { ...env(), SOURCE_DATE_EPOCH: '1700000000' } });
    expect(dated.status, dated.stderr).toBe(0);
    expect((JSON.parse(dated.stdout) as Json).creationInfo.created).toBe('2023-11-14T22:13:20Z');
  });

  it('the OCI layout carries both SBOMs as artifacts whose subject is the image manifest', async () => {
    // SOURCE_DATE_EPOCH is a recorded dependency: the dated run above rebuilt the image,
    // so bring it back to the environment the documents above were made in.
    const rebuilt = await project.redo(['image.oci.tar'], { env: env() });
    expect(rebuilt.status, rebuilt.stderr).toBe(0);
    const layout = join(project.dir, 'layout');
    mkdirSync(layout);
    runTool('tar', ['-xf', join(project.dir, 'image.oci.tar'), '-C', layout]);
    const imageDigest = (JSON.parse(runTool('skopeo', ['inspect', `oci:${layout}:latest`]).stdout) as Json).Digest as string;
    const blob = (digest: string): Buffer => readFileSync(join(layout, 'blobs/sha256', digest.slice('sha256:'.length)));
    for (const [ref, type, text] of [
      ['latest.sbom.spdx', 'application/spdx+json', spdxText],
      ['latest.sbom.cyclonedx', 'application/vnd.cyclonedx+json', cdxText],
    ] as const) {
      const manifest = JSON.parse(runTool('skopeo', ['inspect', '--raw', `oci:${layout}:${ref}`]).stdout) as Json;
      expect(manifest.artifactType).toBe(type);
      expect(manifest.subject).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: imageDigest, size: blob(imageDigest).length });
      expect(manifest.config).toEqual({ mediaType: 'application/vnd.oci.empty.v1+json', digest: `sha256:${sha256('{}')}`, size: 2 });
      expect(manifest.layers).toHaveLength(1);
      expect(manifest.layers[0].mediaType).toBe(type);
      // The artifact holds exactly what `redo-ts sbom` prints.
      expect(blob(manifest.layers[0].digest).toString('utf8')).toBe(text);
    }
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as Json;
    expect(index.manifests.map((m: Json) => m.artifactType ?? m.annotations['org.opencontainers.image.ref.name'])).toEqual([
      'latest',
      'application/spdx+json',
      'application/vnd.cyclonedx+json',
    ]);
    // umoci reads the whole layout and unpacks the image.
    runTool('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, join(project.dir, 'bundle')]);
    expect(readFileSync(join(project.dir, 'bundle/rootfs/usr/bin/greet'), 'utf8')).toBe(readFileSync(join(project.dir, 'app/greet.sh'), 'utf8'));
    // oci-image-tool predates image-spec 1.1 (it rejects the empty config media type and
    // cannot select one ref among several), so it validates the image with the artifact
    // descriptors left out of index.json; every blob stays in place.
    index.manifests = index.manifests.filter((m: Json) => m.artifactType === undefined);
    writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
    expect(runTool('oci-image-tool', ['validate', '--type', 'image', layout]).stdout).toContain('Validation succeeded');
  });

  it('origin names the layer, package and pin, or the spec and its sources, of one file', async () => {
    const busybox = await project.redo(['origin', 'image.tar', '/bin/busybox'], { env: env() });
    expect(busybox.status, busybox.stderr).toBe(0);
    const layer0 = JSON.parse(spdxText).packages[0].comment.match(/targets\/busybox\.fragment\.tar (sha256:[0-9a-f]{64})/)[1];
    expect(busybox.stdout).toContain(`  layer:       0 targets/busybox.fragment.tar ${layer0}\n`);
    expect(busybox.stdout).toContain('  spec:        targets/busybox.spec.yaml\n');
    const pin = busyboxPin(project.dir);
    expect(busybox.stdout).toContain(`  package:     busybox-static ${pin.version} amd64\n`);
    expect(busybox.stdout).toContain(`  pinned:      deb:busybox-static=${pin.version}?arch=amd64 ${pin.integrity}\n`);
    const greet = await project.redo(['origin', '--json', 'image.tar', 'usr/bin/greet'], { env: env() });
    expect(greet.status, greet.stderr).toBe(0);
    const [answer] = JSON.parse(greet.stdout) as Json[];
    expect(answer).toMatchObject({ path: '/usr/bin/greet', mode: '0755', spec: 'targets/greet.spec.yaml (greet 1.0.0, built by its steps)', sha256: sha256(readFileSync(join(project.dir, 'app/greet.sh'))) });
    expect(answer!.sources).toEqual([`file:app/greet.sh sha256-${createHash('sha256').update(readFileSync(join(project.dir, 'app/greet.sh'))).digest('base64')} (project file)`]);
    const sh = await project.redo(['origin', 'image.tar', '/bin/sh'], { env: env() });
    expect(sh.stdout).toContain('  linkTarget:  busybox\n');
    expect(sh.stdout).toContain('  spec:        targets/busybox.spec.yaml (busybox 1.35.0, built by its steps)\n');
    const missing = await project.redo(['origin', 'image.tar', '/usr/bin/nothing'], { env: env() });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('redo: "image.tar": no layer holds "/usr/bin/nothing"');
  });

  it('contains lists the built images and layers holding a package, and exits 1 when none does', async () => {
    const found = await project.redo(['contains', 'busybox-static'], { env: env() });
    expect(found.status, found.stderr).toBe(0);
    const { version } = busyboxPin(project.dir);
    expect(found.stdout).toBe(
      `image      layer                         package         ${'version'.padEnd(version.length)}  spec\n` +
        // The same package is the busybox the image ships and a tool of the build environment.
        `image.tar  targets/busybox.fragment.tar  busybox-static  ${version}  targets/busybox.spec.yaml targets/build-environment.spec.yaml\n`,
    );
    const exact = await project.redo(['contains', '--json', `busybox-static=${version}`], { env: env() });
    expect(JSON.parse(exact.stdout)).toHaveLength(1);
    const other = await project.redo(['contains', 'busybox-static=1:1.36.1-1'], { env: env() });
    expect(other.status).toBe(1);
    expect(other.stdout).toBe('no built image contains busybox-static=1:1.36.1-1 (1 image searched)\n');
  });

  it('refuses a target that is not an image, and an unknown format', async () => {
    const notImage = await project.redo(['sbom', 'targets/greet.fragment.tar'], { env: env() });
    expect(notImage.status).toBe(1);
    expect(notImage.stderr).toContain('redo: "targets/greet.fragment.tar": not an image target');
    const badFormat = await project.redo(['sbom', '--format', 'swid', 'image.tar'], { env: env() });
    expect(badFormat.status).toBe(2);
    expect(badFormat.stderr).toContain('unknown format "swid"');
  });

  it('the validators catch what they are there to catch', async () => {
    const document = JSON.parse(spdxText) as Json;
    document.files[0].checksums = document.files[0].checksums.filter((c: Json) => c.algorithm !== 'SHA1');
    document.packages[1].licenseDeclared = 'GPL-2';
    document.relationships.push({ spdxElementId: 'SPDXRef-Image', relationshipType: 'CONTAINS', relatedSpdxElement: 'SPDXRef-Nowhere' });
    const problems = spdxProblems(JSON.stringify(document));
    expect(problems.some((p) => p.includes('has no SHA1 checksum'))).toBe(true);
    expect(problems.some((p) => p.includes('not a valid SPDX licence expression: GPL-2'))).toBe(true);
    expect(problems).toContain('SPDXID referenced but not defined: SPDXRef-Nowhere');
    const bom = JSON.parse(cdxText) as Json;
    bom.components[0].hashes = [{ alg: 'SHA-256', content: 'not-hex' }];
    expect(await cycloneDxProblems(JSON.stringify(bom))).not.toEqual([]);
  });
});

describe('redo-ts sbom on the tutorial\'s Debian image', () => {
  let cache: string;
  let chapter: ChapterCopy;
  beforeAll(async () => {
    cache = mkdtempSync(join(tmpdir(), 'redo-ts-sbom-t07-cache-'));
    chapter = copyChapter('07-debian-image');
    // The committed locks, moved in the copy off any version a point release removed (copyChapter).
  }, 120_000);
  afterAll(() => {
    chapter?.remove();
    rmSync(cache, { recursive: true, force: true });
  });

  it('gives valid documents with licences from machine-readable copyright files and package dependencies; audit and origin work on it', { timeout: 300_000 }, async () => {
    const spdx = await chapter.redo(['sbom', 'debian.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(spdx.status, spdx.stderr).toBe(0);
    expect(spdxProblems(spdx.stdout)).toEqual([]);
    const cdx = await chapter.redo(['sbom', '--format=cyclonedx', 'debian.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(cdx.status, cdx.stderr).toBe(0);
    expect(await cycloneDxProblems(cdx.stdout)).toEqual([]);

    // Packages come from the locks: every package of base.lock.yaml, version and .deb pin as locked.
    const base = lockedPackages(readFileSync(join(chapter.dir, 'base.lock.yaml'), 'utf8'));
    const zlibDev = lockedPackages(readFileSync(join(chapter.dir, 'zlib-dev.lock.yaml'), 'utf8'));
    // The compiler hello's build steps run (build-requires: toolchain) is a build input too.
    const toolchain = lockedPackages(readFileSync(join(chapter.dir, 'toolchain.lock.yaml'), 'utf8'));
    // And so is the project's build environment, which every build step ran on.
    const buildEnvironment = lockedPackages(readFileSync(join(chapter.dir, 'build-environment.lock.yaml'), 'utf8'));
    const document = JSON.parse(spdx.stdout) as Json;
    // A package may be there twice: delivered in base, and another version as a build input.
    const packageNamed = (name: string): Json => document.packages.find((p: Json) => p.name === name && p.primaryPackagePurpose !== 'APPLICATION' && (!base.has(name) || p.versionInfo === base.get(name)!.version));
    for (const name of ['coreutils', 'zlib1g', 'libc6']) {
      const locked = base.get(name)!;
      expect(locked, name).toBeDefined();
      const item = packageNamed(name);
      expect(item.versionInfo).toBe(locked.version);
      const purlVersion = locked.version.replace(':', '%3A');
      expect(item.externalRefs).toEqual([
        { referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: `pkg:deb/debian/${name}@${purlVersion}?arch=amd64&distro=debian-12` },
      ]);
      expect(item.checksums).toEqual([{ algorithm: 'SHA256', checksumValue: Buffer.from(locked.integrity.slice('sha256-'.length), 'base64').toString('hex') }]);
    }
    expect(packageNamed('libc6').sourceInfo).toContain('deb:libc6=');
    const delivered = new Set(document.relationships.filter((r: Json) => r.spdxElementId === 'SPDXRef-Image' && r.relationshipType === 'CONTAINS').map((r: Json) => r.relatedSpdxElement));
    for (const name of base.keys()) expect(delivered.has(packageNamed(name).SPDXID), name).toBe(true);

    // Licences come from the copyright files in the layer (base) or in the cached .debs
    // (zlib-dev leaves /usr/share/doc out): only the latter needed a summary in the cache,
    // and a run from the summaries gives the same bytes.
    expect(readdirSync(join(cache, 'inventory-v1')).filter((name) => name.endsWith('.json'))).toHaveLength(new Set([...zlibDev.values(), ...toolchain.values(), ...buildEnvironment.values()].map((p) => p.integrity)).size);
    const fromSummaries = await chapter.redo(['sbom', 'debian.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(fromSummaries.stdout).toBe(spdx.stdout);
    const licence = (name: string): string => packageNamed(name).licenseDeclared;
    // coreutils' copyright file: GPL-3+, BSD-4-clause-UC, ISC, FSFULLR, GFDL-NIV-1.3.
    expect(licence('coreutils')).toBe('GPL-3.0-or-later AND BSD-4-Clause-UC AND ISC AND FSFULLR AND GFDL-1.3-no-invariants-only');
    expect(licence('libgmp10')).toContain('(GPL-2.0-or-later OR LGPL-3.0-or-later)');
    expect(licence('zlib1g')).toBe('Zlib');
    expect(licence('zlib1g-dev')).toBe('Zlib');
    expect(licence('libc6')).toBe('LGPL-2.1-or-later AND GPL-2.0-or-later');
    expect(document.hasExtractedLicensingInfos.map((info: Json) => info.licenseId)).toContain('LicenseRef-public-domain');

    // zlib-dev is a build-requires of hello: its packages are build inputs, in the SBOM, not in the image.
    const idOf = (name: string): string => packageNamed(name).SPDXID;
    const specId = (name: string): string => document.packages.find((p: Json) => p.name === name && p.primaryPackagePurpose === 'APPLICATION').SPDXID;
    const has = (from: string, type: string, to: string): boolean =>
      document.relationships.some((r: Json) => r.spdxElementId === from && r.relationshipType === type && r.relatedSpdxElement === to);
    expect(has(idOf('zlib1g-dev'), 'BUILD_DEPENDENCY_OF', specId('zlib-dev'))).toBe(true);
    expect(has(specId('zlib-dev'), 'BUILD_DEPENDENCY_OF', specId('hello'))).toBe(true);
    expect(delivered.has(idOf('zlib1g-dev'))).toBe(false);
    // Dependencies: Depends from the status file, and the lock's pulled-by (base-files
    // pre-depends on the virtual package awk, which mawk provides).
    expect(has(idOf('coreutils'), 'DEPENDS_ON', idOf('libc6'))).toBe(true);
    expect(has(idOf('coreutils'), 'DEPENDS_ON', idOf('libacl1'))).toBe(true);
    expect(has(idOf('zlib1g-dev'), 'DEPENDS_ON', idOf('zlib1g'))).toBe(true);
    expect(has(idOf('base-files'), 'DEPENDS_ON', idOf('mawk'))).toBe(true);

    // Each file belongs to the package whose info/PKG.list in the layer names it (under merged-/usr).
    const fileName = new Map<string, string>(document.files.map((file: Json) => [file.SPDXID, file.fileName]));
    const coreutilsFiles = document.relationships.filter((r: Json) => r.spdxElementId === idOf('coreutils') && r.relationshipType === 'CONTAINS' && fileName.has(r.relatedSpdxElement))
      .map((r: Json) => fileName.get(r.relatedSpdxElement)).sort();
    expect(coreutilsFiles).toEqual(listedRegularFiles(join(chapter.dir, 'base.fragment.tar'), 'coreutils', [join(chapter.dir, 'base.fragment.tar')]));
    expect(coreutilsFiles).toContain('./usr/bin/ls');

    const contains = await chapter.redo(['contains', 'zlib1g'], { env: { REDO_TS_CACHE: cache } });
    expect(contains.status, contains.stderr).toBe(0);
    const rows = (text: string): string[][] => text.trimEnd().split('\n').slice(1).map((line) => line.split(/ {2,}/));
    // The toolchain's newer zlib1g only built hello: a build input, in no layer. (A copy
    // whose locks were refreshed after a point release may lock one zlib1g for both.)
    expect(rows(contains.stdout)).toEqual(toolchain.get('zlib1g')!.version === base.get('zlib1g')!.version
      ? [['debian.tar', 'base.fragment.tar', 'zlib1g', base.get('zlib1g')!.version, 'base.spec.yaml toolchain.spec.yaml zlib-dev.spec.yaml']]
      : [
        ['debian.tar', '-', 'zlib1g', toolchain.get('zlib1g')!.version, 'toolchain.spec.yaml'],
        ['debian.tar', 'base.fragment.tar', 'zlib1g', base.get('zlib1g')!.version, 'base.spec.yaml zlib-dev.spec.yaml'],
      ]);
    const coreutils = await chapter.redo(['contains', `coreutils=${base.get('coreutils')!.version}`], { env: { REDO_TS_CACHE: cache } });
    // The same coreutils is in base and in the build environment: one package, two specs.
    expect(rows(coreutils.stdout)).toEqual([['debian.tar', 'base.fragment.tar', 'coreutils', base.get('coreutils')!.version, 'base.spec.yaml build-environment.spec.yaml']]);
    const buildOnly = await chapter.redo(['contains', 'zlib1g-dev'], { env: { REDO_TS_CACHE: cache } });
    expect(rows(buildOnly.stdout)).toEqual([['debian.tar', '-', 'zlib1g-dev', zlibDev.get('zlib1g-dev')!.version, 'zlib-dev.spec.yaml']]);
    const audit = await chapter.redo(['audit', 'debian.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(audit.stdout).toMatch(/^audit: "debian\.tar": no findings in [0-9]+ members of 2 layers\n$/);
    expect(audit.status).toBe(0);
    const ls = await chapter.redo(['origin', 'debian.tar', '/usr/bin/ls'], { env: { REDO_TS_CACHE: cache } });
    expect(ls.status, ls.stderr).toBe(0);
    expect(ls.stdout).toContain(`  package:     coreutils ${base.get('coreutils')!.version} amd64\n`);
    const lsJson = JSON.parse((await chapter.redo(['origin', '--json', 'debian.tar', '/usr/bin/ls'], { env: { REDO_TS_CACHE: cache } })).stdout) as Json[];
    expect(lsJson).toMatchObject([{ spec: 'base.spec.yaml', package: `coreutils ${base.get('coreutils')!.version} amd64`, purl: `pkg:deb/debian/coreutils@${base.get('coreutils')!.version}?arch=amd64&distro=debian-12`, pinned: `deb:coreutils=${base.get('coreutils')!.version}?arch=amd64 ${base.get('coreutils')!.integrity}` }]);
    // What the build made rather than a package delivered (dpkg's database, /etc/passwd) is the spec's.
    const passwd = JSON.parse((await chapter.redo(['origin', '--json', 'debian.tar', '/etc/passwd'], { env: { REDO_TS_CACHE: cache } })).stdout) as Json[];
    expect(passwd[0]!.spec).toBe('base.spec.yaml (base 12, built by its steps)');
    expect(passwd[0]!.package).toBeUndefined();
  });

  it('follows packages into the layers a package list splits them into (NAME@LAYER.fragment.tar)', { timeout: 300_000 }, async () => {
    // coreutils and what it pulls in get a layer of their own; dpkg's database stays in base's.
    const specPath = join(chapter.dir, 'base.spec.yaml');
    writeFileSync(specPath, readFileSync(specPath, 'utf8').replace(/^ {2}- coreutils .*$/m, '  - {name: coreutils, layer: tools}'));
    const descriptionPath = join(chapter.dir, 'debian.yaml');
    writeFileSync(descriptionPath, readFileSync(descriptionPath, 'utf8').replace(/^ {2}- base\.fragment\.tar$/m, '  - base@tools.fragment.tar\n  - base@base.fragment.tar'));
    const version = lockedPackages(readFileSync(join(chapter.dir, 'base.lock.yaml'), 'utf8')).get('coreutils')!.version;
    const ls = await chapter.redo(['origin', '--json', 'debian.tar', '/usr/bin/ls'], { env: { REDO_TS_CACHE: cache } });
    expect(ls.status, ls.stderr).toBe(0);
    const [answer] = JSON.parse(ls.stdout) as Json[];
    expect(answer!.layer).toMatch(/^0 base@tools\.fragment\.tar sha256:/);
    expect(answer).toMatchObject({ spec: 'base.spec.yaml', package: `coreutils ${version} amd64` });
    const contains = await chapter.redo(['contains', '--json', 'dash'], { env: { REDO_TS_CACHE: cache } });
    expect(JSON.parse(contains.stdout)).toMatchObject([{ image: 'debian.tar', layer: 'base@base.fragment.tar', package: 'dash', spec: 'base.spec.yaml' }]);
    const spdx = await chapter.redo(['sbom', 'debian.tar'], { env: { REDO_TS_CACHE: cache } });
    expect(spdxProblems(spdx.stdout)).toEqual([]);
    const document = JSON.parse(spdx.stdout) as Json;
    const coreutils = document.packages.find((p: Json) => p.name === 'coreutils');
    const fileName = new Map<string, string>(document.files.map((file: Json) => [file.SPDXID, file.fileName]));
    const coreutilsFiles = document.relationships.filter((r: Json) => r.spdxElementId === coreutils.SPDXID && r.relationshipType === 'CONTAINS' && fileName.has(r.relatedSpdxElement))
      .map((r: Json) => fileName.get(r.relatedSpdxElement)).sort();
    // The list is in the database layer; the files are in the tools layer.
    expect(coreutilsFiles).toEqual(listedRegularFiles(join(chapter.dir, 'base@base.fragment.tar'), 'coreutils', [join(chapter.dir, 'base@tools.fragment.tar')]));
    expect(coreutilsFiles).toContain('./usr/bin/ls');
  });
});

/**
 * The regular files (`./usr/bin/ls`) of `layerTars` that dpkg's `info/PKG.list` in
 * `databaseTar` names, its paths moved under /usr as merged-/usr does; sorted. Read with tar.
 */
function listedRegularFiles(databaseTar: string, pkg: string, layerTars: string[]): string[] {
  const regular = new Set(layerTars.flatMap((tar) => execFileSync('tar', ['-tvf', tar], { maxBuffer: 1 << 26 }).toString('utf8').split('\n')
    .filter((line) => line.startsWith('-')).map((line) => `./${line.split(/\s+/).slice(5).join(' ')}`)));
  const listed = execFileSync('tar', ['-xOf', databaseTar, `var/lib/dpkg/info/${pkg}.list`]).toString('utf8').split('\n')
    .filter((line) => line.startsWith('/') && line !== '/.').map((line) => `.${line.replace(/^\/(bin|sbin|lib|lib64)\//, '/usr/$1/')}`);
  return listed.filter((path) => regular.has(path)).sort();
}

/** name → version and integrity of each package block of a lock file's text (the format docs/debian.md gives). */
function lockedPackages(text: string): Map<string, { version: string; integrity: string }> {
  const out = new Map<string, { version: string; integrity: string }>();
  for (const block of text.split(/\n  - name: /).slice(1)) {
    const name = block.split('\n')[0]!.trim();
    const field = (key: string): string => /^ {4}(\S+): (.*)$/m.exec(block.split('\n').find((line) => line.startsWith(`    ${key}: `)) ?? '')![2]!.replace(/^"|"$/g, '');
    out.set(name, { version: field('version'), integrity: field('integrity') });
  }
  return out;
}

describe('inventory of an image made from layer lists and project folders', () => {
  let project: ProjectCopy;
  beforeAll(() => {
    project = copyFixture('501-layer-list');
    const description = join(project.dir, 'both.yaml');
    writeFileSync(description, readFileSync(description, 'utf8').replace(/^layers:/m, 'allowOverlap: true\nlayers:'));
  });
  afterAll(() => project?.remove());

  it('traces files through the lists to the project folders, once per layer holding them', async () => {
    const origin = await project.redo(['origin', '--json', 'both.tar', '/usr/bin/tool']);
    expect(origin.status, origin.stderr).toBe(0);
    const answers = JSON.parse(origin.stdout) as Json[];
    expect(answers.map((answer) => [answer.layer.split(' ').slice(0, 2).join(' '), answer.folder, answer.projectFile])).toEqual([
      ['0 extra.layer.tar', 'extra/', 'extra/usr/bin/tool'],
      ['1 app.layer.tar', 'extra/', 'extra/usr/bin/tool'],
    ]);
    const motd = JSON.parse((await project.redo(['origin', '--json', 'both.tar', '/etc/motd'])).stdout) as Json[];
    expect(motd).toMatchObject([{ mode: '0640', owner: '0:42', folder: 'rootfs/', projectFile: 'rootfs/etc/motd' }]);
    const spdx = await project.redo(['sbom', 'both.tar']);
    expect(spdxProblems(spdx.stdout)).toEqual([]);
    const document = JSON.parse(spdx.stdout) as Json;
    expect(document.packages.map((p: Json) => p.name)).toEqual(expect.arrayContaining(['extra/', 'rootfs/']));
    expect(await cycloneDxProblems((await project.redo(['sbom', '--format', 'cyclonedx', 'both.tar'])).stdout)).toEqual([]);
    // The metadata table gives /etc/motd the group 42, which no /etc/group lists.
    const audit = await project.redo(['audit', 'both.tar']);
    expect(audit.status).toBe(1);
    expect(audit.stdout).toContain('unknown-owner  /etc/motd  layer app.layer.tar  project file rootfs/etc/motd: gid 42 is not in the image\'s /etc/group');
  });
});
