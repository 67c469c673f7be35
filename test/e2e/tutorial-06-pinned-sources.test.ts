// Tutorial chapter 6 (pinned sources): a build refuses a spec without a pin, `redo-ts pin`
// writes the missing one, the fragment is built from the pinned .deb, a wrong pin fails
// with wanted/found and builds nothing, and `pin --update` restores it.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { copyChapter, rebuiltTargets, sha256Of, shownFiles } from '../helpers/tutorial.js';

const chapter = '06-pinned-sources';
const copy = copyChapter(chapter);
const cache = mkdtempSync(join(tmpdir(), 'redo-ts-tutorial-06-cache-'));
const env = { REDO_TS_CACHE: cache };
afterAll(() => {
  copy.remove();
  rmSync(cache, { recursive: true, force: true });
});

// The committed source and its pin, as the README shows them; once hello 2.10-3 has left
// the archive the copy uses the version apt offers now (copy.refreshedPins), pinned with
// the SHA256 the signed index gives it, and the README's quoted output is not checked.
const [refreshed] = copy.refreshedPins;
const url = refreshed?.to ?? 'deb:hello=2.10-3?arch=amd64';
const version = /=([^?]+)/.exec(url)![1]!;
const pin = refreshed?.integrity ?? 'sha256-Lm4vGgAH3EO8kcJz/TbpHkCk8cJ2WgPspotwpCEDh4o=';
const wrongPin = `sha256-${pin.startsWith('sha256-X') ? 'Y' : 'X'}${pin.slice('sha256-X'.length)}`;

describe('tutorial chapter 6: pinned sources', () => {
  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual(['all.do', 'hello.spec.yaml']);
    for (const [path, text, actual] of shown) expect(text, path).toBe(actual);
  });

  it('refuses to build a source that has no pin, before downloading anything', async () => {
    const result = await copy.redo(['all'], { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      [
        'redo: "hello.spec.yaml": a source has no integrity pin',
        `  hello.spec.yaml:7: ${url}`,
        '  hint: run `redo-ts pin hello.spec.yaml` to compute the pins, then review and commit them',
      ].join('\n'),
    );
    expect(rebuiltTargets(result.stderr)).toEqual([]);
    expect(() => statSync(join(copy.dir, 'hello.fragment.tar'))).toThrow();
    expect(readdirSync(cache)).toEqual([]);
  });

  it('pins it with `redo-ts pin`, writing only the integrity line into the spec', async () => {
    const before = copy.read('hello.spec.yaml');
    const result = await copy.redo(['pin', 'hello.spec.yaml'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe(`hello.spec.yaml:7: ${url}: pinned ${pin}\n`);
    expect(copy.read('hello.spec.yaml')).toBe(before.replace('    include:', `    integrity: ${pin}\n    include:`));
  });

  it('builds the fragment from the pinned package, and lists the pin as its provenance', async () => {
    const result = await copy.redo(['all'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(rebuiltTargets(result.stderr)).toEqual(['all', 'hello.fragment.tar']);
    expect(result.stderr).toContain(`fragment: deb:hello ${version} ${pin}`);
    // The README quotes this build's output: its digest must be the one the reader gets.
    const readme = copy.read('README.md');
    if (refreshed === undefined) expect(readme).toContain(`fragment: 7 members, ${sha256Of(join(copy.dir, 'hello.fragment.tar'))}`);
    const pins = await copy.redo(['pins', 'all'], { env });
    expect(pins.status, pins.stderr).toBe(0);
    expect(pins.stdout.split('\n')[1]).toMatch(new RegExp(`^deb +hello +${version.replace(/[.+]/g, '\\$&')} +${pin.replace(/[+/]/g, '\\$&')} +hello\\.spec\\.yaml$`));
  });

  it('fails on a pin that does not match the bytes, naming both digests, and builds nothing', async () => {
    const fragment = join(copy.dir, 'hello.fragment.tar');
    const digestBefore = sha256Of(fragment);
    const mtimeBefore = statSync(fragment).mtimeMs;
    copy.write('hello.spec.yaml', copy.read('hello.spec.yaml').replace(pin, wrongPin));
    const result = await copy.redo(['all'], { env });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      [
        `redo: "hello.spec.yaml": source "${url}": integrity mismatch`,
        `  wanted: ${wrongPin}`,
        `  found:  ${pin}`,
        '  nothing was cached and nothing was built',
        '  hint: change the pin (redo-ts pin --update) only if the upstream file was meant to change',
      ].join('\n'),
    );
    expect(rebuiltTargets(result.stderr)).toEqual([]);
    expect(sha256Of(fragment)).toBe(digestBefore);
    expect(statSync(fragment).mtimeMs).toBe(mtimeBefore);
  });

  it('restores the pin with `pin --update`, old then new; the spec is as it was built, so nothing runs', async () => {
    const result = await copy.redo(['pin', '--update', 'hello.spec.yaml'], { env });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toBe(`hello.spec.yaml:7: ${url}: ${wrongPin} → ${pin}\n`);
    const build = await copy.redo(['all'], { env });
    expect(build.status, build.stderr).toBe(0);
    expect(rebuiltTargets(build.stderr)).toEqual([]);
  });
});
