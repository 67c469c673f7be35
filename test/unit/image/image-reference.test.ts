import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRedoError, type RedoError } from '../../../lib/errors.js';
import { loadImageDescription } from '../../../lib/image/description.js';
import { envProblem, portProblem, referenceProblem, userProblem, workingDirProblem } from '../../../lib/image/image-reference.js';

describe('referenceProblem: the distribution reference grammar', () => {
  it.each([
    'localhost/hello:latest',
    'app:1.0',
    'localhost:5000/team/app:v1.2.3-rc_1',
    'registry.example/a.b/c__d/e--f:TAG',
    '[::1]:5000/app:x',
    `${'a'.repeat(200)}:${'t'.repeat(128)}`,
  ])('%s is a valid name:tag', (reference) => {
    expect(referenceProblem(reference)).toBeUndefined();
  });

  it.each([
    ['Localhost/App:latest', 'name component "Localhost"'],
    ['localhost/App:latest', 'name component "App"'],
    ['hello world:latest', 'name component "hello world"'],
    ['x:a:b:c', 'name component "x:a:b"'],
    ['x:a/b:c', 'registry host "x:a"'],
    ['hello', 'found no tag'],
    ['localhost/hello', 'found no tag'],
    ['hello:', 'tag ""'],
    ['hello:.x', 'tag ".x"'],
    [`hello:${'t'.repeat(129)}`, 'tag "'],
    ['hello@sha256:0000:latest', 'not by digest'],
    ['a_/b:1', 'name component "a_"'],
    ['-bad.host/app:1', 'registry host "-bad.host"'],
    [`${'a'.repeat(256)}:1`, 'over 255'],
  ])('%s is refused: %s', (reference, problem) => {
    expect(referenceProblem(reference)).toContain(problem);
  });
});

describe('config values', () => {
  it.each([
    [envProblem, 'PATH=/bin', undefined],
    [envProblem, 'EMPTY=', undefined],
    [envProblem, '=x', 'the name ""'],
    [envProblem, '1X=a', 'the name "1X"'],
    [envProblem, 'A B=c', 'the name "A B"'],
    [envProblem, 'novalue', 'is not NAME=VALUE'],
    [portProblem, '8080', undefined],
    [portProblem, '53/udp', undefined],
    [portProblem, '65535/sctp', undefined],
    [portProblem, '0', 'from 1 to 65535'],
    [portProblem, '65536/tcp', 'from 1 to 65535'],
    [portProblem, '80/http', 'PORT[/tcp|/udp|/sctp]'],
    [portProblem, '8000-8010', 'PORT[/tcp|/udp|/sctp]'],
    [userProblem, '0:0', undefined],
    [userProblem, 'app', undefined],
    [userProblem, 'a b', 'USER or USER:GROUP'],
    [userProblem, '1:2:3', 'USER or USER:GROUP'],
    [workingDirProblem, '/srv/app', undefined],
    [workingDirProblem, 'srv', 'not an absolute path'],
  ] as const)('%o(%s) → %s', (check, value, problem) => {
    if (problem === undefined) expect(check(value)).toBeUndefined();
    else expect(check(value)).toContain(problem);
  });
});

describe('loadImageDescription refuses what a client would, at file:line', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'redo-ts-reference-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const header = ['layers: [a.tar]'];
  it.each([
    [['tags:', '  - localhost/ok:1', '  - Bad:1'], 'image.yaml:4: tags: name component "Bad"'],
    [['tags: ["x:a:b:c"]'], 'image.yaml:2: tags: name component "x:a:b"'],
    [['architecture: x86'], 'image.yaml:2: architecture: "x86" is not one of 386, amd64'],
    [['os: Linux'], 'image.yaml:2: os: "Linux" is not one of'],
    [['config:', '  env:', '    - A=1', '    - =x'], 'image.yaml:5: config.env: "=x": the name ""'],
    [['config:', '  workingDir: app'], 'image.yaml:3: config.workingDir: "app" is not an absolute path'],
    [['config:', '  exposedPorts: [80/tcp, 99999/tcp]'], 'image.yaml:3: config.exposedPorts: "99999/tcp" is not PORT'],
    [['config:', '  user: "root user"'], 'image.yaml:3: config.user: "root user" is not USER'],
    [['config:', '  user: 1000'], 'image.yaml:3: config.user: expected a string; YAML reads this as a number or boolean: put it in quotes'],
    [['config:', '  labels:', '    version: 1.0'], 'image.yaml:4: config.labels.version: expected a string; YAML reads this as a number or boolean: put it in quotes'],
    [['config:', '  cmd: [--verbose, true]'], 'image.yaml:3: config.cmd: expected a string; YAML reads this as a number or boolean: put it in quotes'],
    // issue 18: what a client would split, cut or choke on
    [['config:', '  env:', '    - "A=one\\ntwo"'], 'image.yaml:4: config.env: "A": the value holds a line break'],
    [['config:', '  cmd: ["a\\0b"]'], 'image.yaml:3: config.cmd: "a\\u0000b" holds a NUL byte, which no program argument can'],
    [['config:', '  entrypoint: ["/bin/sh\\0"]'], 'image.yaml:3: config.entrypoint: "/bin/sh\\u0000" holds a NUL byte'],
    [['config:', '  labels:', '    "a\\nb": x'], 'image.yaml:4: config.labels: the label name "a\\nb" holds a control character (a line break?)'],
  ])('%j', async (lines, detail) => {
    const path = join(dir, 'image.yaml');
    writeFileSync(path, [...header, ...lines, ''].join('\n'));
    let caught: unknown;
    try {
      await loadImageDescription(path, dir);
    } catch (error) {
      caught = error;
    }
    expect(isRedoError(caught, 'ERR_IMAGE_DESCRIPTION')).toBe(true);
    expect((caught as RedoError).details.join('\n')).toContain(detail);
  });

  it('a 2 MB label is refused at its line (issue 18)', async () => {
    const path = join(dir, 'image.yaml');
    writeFileSync(path, [...header, 'config:', '  labels:', `    big: ${'x'.repeat(2 * 1024 * 1024)}`, ''].join('\n'));
    const caught = await loadImageDescription(path, dir).then(() => undefined, (error: unknown) => error);
    expect(isRedoError(caught, 'ERR_IMAGE_DESCRIPTION')).toBe(true);
    expect((caught as RedoError).details.join('\n')).toContain('image.yaml:4: config.labels.big: the value is 2097152 bytes; a label holds at most 65536');
  });
});
