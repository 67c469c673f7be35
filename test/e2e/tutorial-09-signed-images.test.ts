// Tutorial chapter 9 (signed images): the reader's commit is pushed with --sign, the
// attachments check out with the public key, a second clone rebuilds offline and attaches
// a verification summary, and a clone with a changed file gets nothing attached.
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyChapter, shownFiles } from '../helpers/tutorial.js';
import { runCli } from '../helpers/rig.js';
import { hasTool, runTool, startRegistry, type LoopbackRegistry } from '../helpers/clients.js';

const chapter = '09-signed-images';
const tools = ['docker-registry', 'git', 'unshare'];
const missing = tools.filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`tutorial chapter 9 skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;
const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 'reader', GIT_AUTHOR_EMAIL: 'r@r', GIT_COMMITTER_NAME: 'reader', GIT_COMMITTER_EMAIL: 'r@r' };

describeIf('tutorial chapter 9: signed images', () => {
  const copy = copyChapter(chapter);
  const work = mkdtempSync(join(tmpdir(), 'redo-ts-tutorial-09-'));
  const env = { REDO_TS_CACHE: join(work, 'cache') };
  let registry: LoopbackRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
    for (const args of [['init', '-q'], ['add', '-A'], ['commit', '-qm', 'signed image']]) runTool('git', args, { cwd: copy.dir, env: gitEnv });
  });
  afterAll(async () => {
    await registry?.stop();
    copy.remove();
    rmSync(work, { recursive: true, force: true });
  });

  it('shows the real files in its README', () => {
    const shown = shownFiles(chapter);
    expect(shown.map(([path]) => path).sort()).toEqual(['all.do', 'app.spec.yaml', 'app.yaml', 'busybox.spec.yaml', 'greet.sh']);
    for (const [, inReadme, inFolder] of shown) expect(inReadme).toBe(inFolder);
  });

  it('push --sign, attestations, and verify --attest from a second clone, as the chapter runs them', async () => {
    const reference = `${registry.address}/tutorial/signed:1.0`;
    expect((await copy.redo(['key', 'generate', '--out', 'release'])).status).toBe(0);
    const pushed = await copy.redo(['push', '--sign', 'release.key', 'app.tar', reference], { env });
    expect(pushed.status, pushed.stderr).toBe(0);
    expect(pushed.stdout).toMatch(/^signature  sha256:[0-9a-f]{12}…  payload 2\d\d B, manifest 7\d\d B  tag sha256-[0-9a-f]{64}\.sig$/m);
    expect(pushed.stdout).toMatch(/^provenance sha256:[0-9a-f]{12}…  statement \d+\.\d KiB, envelope \d+\.\d KiB, manifest 750 B$/m);

    const listed = await copy.redo(['attestations', '--key', 'release.pub', reference]);
    expect(listed.status, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^signature +sha256:[0-9a-f]{12}… +2\\d\\d B  ${reference}  verified$`, 'm'));
    expect(listed.stdout).toMatch(/^attestation +sha256:[0-9a-f]{12}… +\d+\.\d KiB  https:\/\/slsa.dev\/provenance\/v1  verified$/m);

    const rebuilder = join(work, 'ch9-rebuilder');
    runTool('git', ['clone', '-q', copy.dir, rebuilder], { env: gitEnv });
    expect((await runCli(rebuilder, ['key', 'generate', '--out', 'rebuilder'])).code).toBe(0);
    const vouched = await runCli(rebuilder, ['verify', '--attest', reference, '--key', 'rebuilder.key', '--builder-key', join(copy.dir, 'release.pub')], { env });
    expect(vouched.code, vouched.stderr).toBe(0);
    expect(vouched.stdout).toMatch(/^identical: app\.oci\.tar sha256:[0-9a-f]{64} rebuilt offline from its provenance\nverification summary sha256:[0-9a-f]{12}…  statement 1\d\d\d B, envelope 1\d\d\d B\n$/);
    const both = await runCli(rebuilder, ['attestations', '--key', join(copy.dir, 'release.pub'), '--key', 'rebuilder.pub', reference]);
    expect(both.code, both.stderr).toBe(0);
    expect(both.stdout).toMatch(/  https:\/\/slsa.dev\/verification_summary\/v1  verified$/m);

    appendFileSync(join(rebuilder, 'greet.sh'), 'echo "Hello from elsewhere"\n');
    const refused = await runCli(rebuilder, ['verify', '--attest', reference, '--key', 'rebuilder.key', '--builder-key', join(copy.dir, 'release.pub')], { env });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toMatch(new RegExp(`^different: this checkout is not what ${reference} was built from\\n  first difference: greet\\.sh: wanted sha256:[0-9a-f]{64}, found sha256:[0-9a-f]{64}\\nnothing attached\\n$`));
  });
});
