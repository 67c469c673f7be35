// Tutorial chapter 8 (incremental rebuilds and proof): a touch rebuilds nothing, an edit
// rebuilds exactly its dependents and `explain` says why beforehand, a harmless edit stops
// at the first unchanged output, two folders build identical bytes, `redo-ts verify`
// proves it, and catches (then clears) a rule that writes the date.
import { readFileSync, rmSync, statSync, utimesSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyChapter, rebuiltTargets, repoRoot, sha256Of, shownFiles } from '../helpers/tutorial.js';

const chapter = '08-incremental-proof';
const copy = copyChapter(chapter);
const cache = mkdtempSync(join(tmpdir(), 'redo-ts-tutorial-08-cache-'));
const env = { REDO_TS_CACHE: cache };
afterAll(() => {
  copy.remove();
  rmSync(cache, { recursive: true, force: true });
});

const outputs = ['busybox.fragment.tar', 'app.fragment.tar', 'app.tar', 'app.oci.tar'];

/** The fixed build-info.do the README shows after `<!-- fix for: build-info.do -->`. */
function fixedBuildInfoRule(): string {
  const readme = readFileSync(join(repoRoot, 'tutorial', chapter, 'README.md'), 'utf8');
  const match = /<!-- fix for: build-info\.do -->\n```sh\n([\s\S]*?)```\n/.exec(readme);
  if (match === null) throw new Error('README.md shows no fixed build-info.do');
  return match[1]!;
}

describe('tutorial chapter 8: incremental rebuilds and proof', () => {
  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual([
      'all.do',
      'app.spec.yaml',
      'app.yaml',
      'build-environment.spec.yaml',
      'build-info.do',
      'busybox.spec.yaml',
      'greet.sh',
      'stamp.spec.yaml',
      'stamped.yaml',
    ]);
    for (const [path, text, actual] of shown) expect(text, path).toBe(actual);
  });

  it('builds the image', async () => {
    const result = await copy.redo(['all'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['all', 'app.fragment.tar', 'app.image.json', 'app.oci.tar', 'app.tar', 'build-environment.fragment.tar', 'busybox.fragment.tar']);
  });

  it('gives the same bytes in another folder, with another umask, time zone and file times', async () => {
    const second = copyChapter(chapter);
    try {
      const later = Date.now() / 1000 + 86_400;
      for (const file of ['greet.sh', 'app.spec.yaml', 'busybox.spec.yaml', 'app.yaml']) utimesSync(join(second.dir, file), later, later);
      const result = await second.redo(['all'], { env: { ...env, TZ: 'Pacific/Kiritimati', LC_ALL: 'C.UTF-8' }, umask: '077' });
      expect(result.status, result.stderr).toBe(0);
      for (const output of outputs) expect(sha256Of(join(second.dir, output)), output).toBe(sha256Of(join(copy.dir, output)));
    } finally {
      second.remove();
    }
  });

  it('runs nothing when nothing changed, nor when a source is only touched', async () => {
    const again = await copy.redo(['all'], { env });
    expect(again.status, again.stderr).toBe(0);
    expect(rebuiltTargets(again.stderr)).toEqual([]);
    const touchedAt = Date.now() / 1000 + 10;
    utimesSync(join(copy.dir, 'greet.sh'), touchedAt, touchedAt);
    const touched = await copy.redo(['all'], { env });
    expect(touched.status, touched.stderr).toBe(0);
    expect(rebuiltTargets(touched.stderr)).toEqual([]);
  });

  it('explains an edit before building, then rebuilds exactly the targets built from it', async () => {
    const busyboxMtimeMs = statSync(join(copy.dir, 'busybox.fragment.tar')).mtimeMs;
    copy.write('greet.sh', copy.read('greet.sh').replace('Hello from a reproducible image!', 'Hello again!'));
    const explain = await copy.redo(['explain', 'all'], { env });
    expect(explain.status, explain.stderr).toBe(0);
    const lines = explain.stdout.split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'all: would rebuild if app.tar changes when rebuilt',
      '  app.tar: would rebuild if app.image.json changes when rebuilt',
      '    app.image.json: would rebuild if app.fragment.tar changes when rebuilt',
      '      app.fragment.tar: would rebuild (changed: greet.sh)',
    ]);
    expect(lines[4]).toMatch(/^ {8}old: sha256:[0-9a-f]{64}$/);
    expect(lines[5]).toBe(`        new: ${sha256Of(join(copy.dir, 'greet.sh'))}`);

    const result = await copy.redo(['all'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['all', 'app.fragment.tar', 'app.image.json', 'app.oci.tar', 'app.tar']);
    expect(result.stderr).toMatch(/^redo {2}app\.fragment\.tar {2}\(changed: greet\.sh\)$/m);
    expect(result.stderr).toMatch(/^redo {2}app\.image\.json {2}\(changed: app\.fragment\.tar\)$/m);
    expect(result.stderr).toMatch(/^redo {2}app\.tar {2}\(changed: app\.image\.json\)$/m);
    expect(statSync(join(copy.dir, 'busybox.fragment.tar')).mtimeMs).toBe(busyboxMtimeMs);
  });

  it('stops at the fragment when an edit leaves its bytes unchanged (early cutoff)', async () => {
    const before = copy.read('app.spec.yaml');
    const after = before.replace("this chapter's program", 'the program of this chapter');
    expect(after).not.toBe(before);
    copy.write('app.spec.yaml', after);
    const result = await copy.redo(['all'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['app.fragment.tar']);
  });

  it('proves the image reproducible with `redo-ts verify`', async () => {
    const result = await copy.redo(['verify', 'app.tar'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe(`identical: app.tar ${sha256Of(join(copy.dir, 'app.tar'))}\n`);
    // The README quotes this very line, after the same edits the reader made.
    expect(copy.read('README.md')).toContain(result.stdout.trim());
  });

  it('catches the rule that writes the date, naming the layer, the member and the byte', async () => {
    const result = await copy.redo(['verify', 'stamped.tar'], { env });
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(
      /^different: stamped\.tar\n {2}first difference: layer 3 \([0-9a-f]{64}\.tar vs [0-9a-f]{64}\.tar\) → etc\/build-info: content at byte \d+: 0x[0-9a-f]{2} vs 0x[0-9a-f]{2}\n$/,
    );
  });

  it('is identical again once the date comes from SOURCE_DATE_EPOCH', async () => {
    copy.write('build-info.do', fixedBuildInfoRule());
    const result = await copy.redo(['verify', 'stamped.tar'], { env });
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toBe(`identical: stamped.tar ${sha256Of(join(copy.dir, 'stamped.tar'))}\n`);
    expect(copy.read('build-info')).toBe('built from the sources of 1970-01-01 00:00:00 UTC\n');
  });
});
