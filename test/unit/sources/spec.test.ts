import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RedoError } from '../../../lib/errors.js';
import { loadSpec, parseDebUrl, parseSpec } from '../../../lib/sources/spec.js';

const fixture = resolve(__dirname, '../../fixtures/401-spec-example');
const root = '/project';
const at = join(root, 'targets/x.spec.yaml');

function failure(text: string): RedoError {
  try {
    parseSpec(text, at, root);
  } catch (error) {
    if (error instanceof RedoError) return error;
    throw error;
  }
  throw new Error('the spec was accepted');
}

describe('loadSpec', () => {
  it('reads the complete example with every field', async () => {
    const spec = await loadSpec(join(fixture, 'targets/hello.spec.yaml'), { root: fixture });
    expect(spec.name).toBe('hello');
    expect(spec.version).toBe('1.0.0');
    expect(spec.description).toBe('Prints a greeting');
    expect(spec.layer).toBe('app');
    expect(spec.relativePath).toBe('targets/hello.spec.yaml');
    expect(spec.sources.map((s) => [s.kind, s.name, s.isProjectFile])).toEqual([
      ['file', 'hello.sh', true],
      ['file', 'greeting.txt', false],
    ]);
    expect(spec.sources[1]!.integrity).toMatch(/^sha256-/);
    expect(spec.patches).toHaveLength(1);
    expect(spec.patches[0]!.strip).toBe(1);
    expect(spec.build).toHaveLength(3);
    expect(spec.files.map((f) => [f.pattern, f.mode, f.uid, f.gid, f.layer])).toEqual([
      ['/usr/bin/hello', 0o755, undefined, undefined, undefined],
      ['/usr/bin/hi', undefined, undefined, undefined, undefined],
      ['/usr/share/hello', undefined, 0, 0, 'data'],
    ]);
    expect(spec.requires).toEqual(['busybox']);
    expect(spec.buildRequires).toEqual([]);
  });

  it('reads a deb source with architecture and include globs', async () => {
    const spec = await loadSpec(join(fixture, 'targets/busybox.spec.yaml'), { root: fixture });
    const source = spec.sources[0]!;
    expect(source.kind).toBe('deb');
    expect(source.deb).toEqual({ package: 'busybox-static', version: '1:1.35.0-4+deb12u1+b1', arch: 'amd64' });
    expect(source.include).toEqual(['/bin/**']);
    expect(source.isDelivered).toBe(true);
  });

  it('a missing spec file is ERR_SPEC_NOT_FOUND naming it', async () => {
    await expect(loadSpec(join(fixture, 'targets/nope.spec.yaml'), { root: fixture })).rejects.toMatchObject({
      code: 'ERR_SPEC_NOT_FOUND',
      headline: 'redo: "targets/nope.spec.yaml": spec file cannot be read',
    });
  });
});

describe('parseSpec validation', () => {
  const cases: Array<{ name: string; text: string; code: string; headline: string }> = [
    {
      name: 'an unknown top-level field is ERR_SPEC_UNKNOWN_FIELD at its line',
      text: 'name: x\nversion: "1"\nsummary: oops\n',
      code: 'ERR_SPEC_UNKNOWN_FIELD',
      headline: 'redo: "targets/x.spec.yaml:3": summary: unknown field (allowed: name, version, description, layer, sources, patches, build, files, requires, build-requires, build-environment, packages, architecture, recommends, exclude, npm, pypi, caches)',
    },
    {
      name: 'an unknown source field names the source index',
      text: 'name: x\nversion: "1"\nsources:\n  - url: file:a\n    integrity: project\n    sha: 1\n',
      code: 'ERR_SPEC_UNKNOWN_FIELD',
      headline: 'redo: "targets/x.spec.yaml:6": sources[0].sha: unknown field (allowed: name, url, integrity, size, unpack, include, exclude, deliver, layer)',
    },
    {
      name: 'a version other YAML readers take for Infinity must be quoted (issue 18)',
      text: 'name: x\nversion: 1e400\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:2": version: "1e400" reads as a number too large for YAML (Infinity); quote it',
    },
    {
      name: 'a build step other YAML readers take for a boolean must be quoted (issue 18)',
      text: 'name: x\nversion: "1"\nbuild: [true]\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:3": build[0]: "true" reads as a boolean in YAML; quote it ("true") if the text is meant',
    },
    {
      name: 'a missing version is reported at the top map',
      text: 'name: x\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:1": version: is required',
    },
    {
      name: 'a url with an unknown scheme is refused',
      text: 'name: x\nversion: "1"\nsources:\n  - url: ftp://h/x.tar\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:4": sources[0].url: "ftp://h/x.tar" must start with file:, http://, https:// or deb:',
    },
    {
      name: 'a deb source without a version is refused',
      text: 'name: x\nversion: "1"\nsources:\n  - url: deb:hello\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:4": sources[0].url: "deb:hello" must pin a version: deb:PACKAGE=VERSION',
    },
    {
      name: 'an integrity that is not SRI is refused',
      text: 'name: x\nversion: "1"\nsources:\n  - url: file:a\n    integrity: md5-abc\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:5": sources[0].integrity: "md5-abc" is not an SRI string (sha256-, sha384- or sha512- followed by the base64 digest)',
    },
    {
      name: 'a file: url leaving the project is refused',
      text: 'name: x\nversion: "1"\nsources:\n  - url: file:../secret\n    integrity: project\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:4": sources[0].url: "file:../secret" must name a file inside the project, relative to its root (file:src/hello.c)',
    },
    {
      name: 'integrity: project is only for file: sources',
      text: 'name: x\nversion: "1"\nsources:\n  - url: https://h/x.tar\n    integrity: project\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:5": sources[0].integrity: "project" applies only to file: sources (files versioned with the project)',
    },
    {
      name: 'a mode that is not octal text is refused',
      text: 'name: x\nversion: "1"\nfiles:\n  - path: /a\n    mode: rwx\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:5": files[0].mode: "rwx" must be octal, like "0755" or "4755"',
    },
    {
      name: 'an owner given as a user name is refused',
      text: 'name: x\nversion: "1"\nfiles:\n  - path: /a\n    owner: www-data\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:5": files[0].owner: "www-data" must be a number (or root): names have no meaning without the image\'s /etc/passwd',
    },
    {
      name: 'a relative files path is refused',
      text: 'name: x\nversion: "1"\nfiles:\n  - path: usr/bin\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:4": files[0].path: "usr/bin" must be an absolute image path without ".." (like /usr/bin/hello)',
    },
    {
      name: 'the name must match the file name',
      text: 'name: y\nversion: "1"\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:1": name: "y" does not match the file name (wanted "x")',
    },
    {
      name: 'build must be a list of strings',
      text: 'name: x\nversion: "1"\nbuild: make\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:3": build: must be a list',
    },
    {
      name: 'a YAML syntax error gives its line',
      text: 'name: x\nversion: "1"\nbuild: [a]]\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:3": yaml: Unexpected flow-seq-end token in YAML stream: "]"',
    },
    {
      name: 'a duplicate key is refused',
      text: 'name: x\nversion: "1"\nversion: "2"\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:3": yaml: Map keys must be unique',
    },
    {
      name: 'a spec cannot require itself',
      text: 'name: x\nversion: "1"\nrequires: [x]\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:3": requires[0]: a spec cannot depend on itself',
    },
    {
      name: 'two sources with one file name are refused',
      text: 'name: x\nversion: "1"\nsources:\n  - url: file:a/f\n    integrity: project\n  - url: file:b/f\n    integrity: project\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:6": sources[1].name: "f" is already the name of sources[0]; give one a different name:',
    },
    {
      name: 'include is only for deb: sources',
      text: 'name: x\nversion: "1"\nsources:\n  - url: file:a\n    integrity: project\n    include: [/x]\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:6": sources[0].include: applies only to deb: sources (deliver built files through `files`)',
    },
    {
      name: 'build-environment is sandbox or host, nothing else',
      text: 'name: x\nversion: "1"\nbuild-environment: docker\n',
      code: 'ERR_SPEC_INVALID',
      headline: 'redo: "targets/x.spec.yaml:3": build-environment: "docker" must be sandbox (the default) or host',
    },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const error = failure(testCase.text);
      expect(error.code).toBe(testCase.code);
      expect(error.headline).toBe(testCase.headline);
      expect(error.hint).toBe('docs/specs.md describes every field');
    });
  }

  it('lists every further problem as a file:line detail', () => {
    const error = failure('name: x\nversion: "1"\nfoo: 1\nsources:\n  - url: ftp:x\n');
    expect(error.render()).toBe(
      [
        'redo: "targets/x.spec.yaml:3": foo: unknown field (allowed: name, version, description, layer, sources, patches, build, files, requires, build-requires, build-environment, packages, architecture, recommends, exclude, npm, pypi, caches)',
        '  targets/x.spec.yaml:5: sources[0].url: "ftp:x" must start with file:, http://, https:// or deb:',
        '  hint: docs/specs.md describes every field',
      ].join('\n'),
    );
  });

  it('keeps scalars as text: 0755 stays octal and no is not false', () => {
    const spec = parseSpec('name: x\nversion: 1.10\nfiles:\n  - path: /no\n    mode: 0755\n    owner: 1000\n', at, root);
    expect(spec.version).toBe('1.10');
    expect(spec.files[0]!.mode).toBe(0o755);
    expect(spec.files[0]!.uid).toBe(1000);
  });
});

describe('parseDebUrl', () => {
  const cases: Array<[string, ReturnType<typeof parseDebUrl>]> = [
    ['deb:hello=2.10-3', { package: 'hello', version: '2.10-3' }],
    ['deb:busybox-static=1:1.35.0-4+deb12u1+b1?arch=amd64', { package: 'busybox-static', version: '1:1.35.0-4+deb12u1+b1', arch: 'amd64' }],
    ['deb:libc6=2.36-9+deb12u10?arch=arm64', { package: 'libc6', version: '2.36-9+deb12u10', arch: 'arm64' }],
    ['deb:Hello=1', '"Hello" is not a Debian package name'],
    ['deb:hello=1?os=linux', '"?os=linux" must be ?arch=ARCHITECTURE (like ?arch=amd64)'],
  ];
  for (const [url, wanted] of cases) {
    it(`parses ${url}`, () => expect(parseDebUrl(url)).toEqual(wanted));
  }
});
