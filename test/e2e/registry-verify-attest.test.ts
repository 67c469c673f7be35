// `redo-ts verify --attest` in another clone: the image is rebuilt offline from its
// provenance and a signed VSA is attached; a checkout that differs, or an image that does
// not match its (forged) provenance, gets nothing attached and the first difference named.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registryFixture } from '../helpers/registry-fixtures.js';
import { runCli } from '../helpers/rig.js';
import { hasTool, runTool, startRegistry, type LoopbackRegistry } from '../helpers/clients.js';
import { loadSigningKey } from '../../lib/attest/key.js';
import { attachProvenance } from '../../lib/attest/provenance.js';
import { RegistryClient } from '../../lib/registry/client.js';

const tools = ['docker-registry', 'skopeo', 'git', 'unshare'];
const missing = tools.filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`verify --attest tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const canUnshare = missing.length === 0 && runTool('sh', ['-c', 'unshare -n true && echo yes || echo no']).stdout.trim() === 'yes';
if (missing.length === 0 && !canUnshare) console.warn('verify --attest tests skipped: unshare -n (a network namespace) is not allowed here');
const describeIf = canUnshare ? describe : describe.skip;

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z' };

async function getJson(url: string, accept = 'application/vnd.oci.image.manifest.v1+json'): Promise<any> {
  const response = await fetch(url, { headers: { accept } });
  expect(response.status).toBe(200);
  return response.json();
}

/** The referrers index entries of `digest`. */
async function referrers(address: string, repository: string, digest: string): Promise<{ digest: string; artifactType: string; annotations?: Record<string, string> }[]> {
  return (await getJson(`http://${address}/v2/${repository}/manifests/sha256-${digest.slice(7)}`, 'application/vnd.oci.image.index.v1+json')).manifests;
}

/** The statement inside the in-toto referrer of `digest` with `predicateType`. */
async function statementOf(address: string, repository: string, digest: string, predicateType: string): Promise<Buffer> {
  const entry = (await referrers(address, repository, digest)).find((d) => d.annotations?.['in-toto.io/predicate-type'] === predicateType)!;
  const manifest = await getJson(`http://${address}/v2/${repository}/manifests/${entry.digest}`);
  const envelope = await getJson(`http://${address}/v2/${repository}/blobs/${manifest.layers[0].digest}`, '*/*');
  return Buffer.from(envelope.payload, 'base64');
}

describeIf('redo-ts verify --attest', () => {
  let registry: LoopbackRegistry;
  let work: string;
  let builder: string;
  let rebuilder: string;
  let liar: string;
  let honestDigest: string;
  beforeAll(async () => {
    registry = await startRegistry();
    work = mkdtempSync(join(tmpdir(), 'redo-ts-verify-attest-'));
    const origin = registryFixture();
    try {
      for (const args of [['init', '-q'], ['add', '-A'], ['commit', '-q', '-m', 'fixture']]) runTool('git', args, { cwd: origin.dir, env: gitEnv });
      [builder, rebuilder, liar] = ['builder', 'elsewhere/rebuilder', 'liar'].map((name) => {
        runTool('git', ['clone', '-q', origin.dir, join(work, name)], { env: gitEnv });
        return join(work, name);
      }) as [string, string, string];
    } finally {
      origin.remove();
    }
    for (const name of ['builder', 'rebuilder']) expect((await runCli(work, ['key', 'generate', '--out', join(work, name)])).code).toBe(0);
    const pushed = await runCli(builder, ['push', '--sign', join(work, 'builder.key'), 'image.tar', `${registry.address}/team/app:1.0`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    honestDigest = /pushed \S+@(sha256:[0-9a-f]{64})/.exec(pushed.stdout)![1]!;
  });
  afterAll(async () => {
    await registry?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('another clone rebuilds the image offline to the same digest and attaches a VSA signed by the rebuilder, naming what matched', async () => {
    const reference = `${registry.address}/team/app:1.0`;
    const verified = await runCli(rebuilder, ['verify', '--attest', reference, '--key', join(work, 'rebuilder.key'), '--builder-key', join(work, 'builder.pub')]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toContain(`identical: image.oci.tar ${honestDigest} rebuilt offline from its provenance\n`);
    expect(verified.stdout).toMatch(/^verification summary sha256:[0-9a-f]{12}…  statement \d+ B, envelope \d+ B$/m);

    const listed = await runCli(rebuilder, ['attestations', '--key', join(work, 'builder.pub'), '--key', join(work, 'rebuilder.pub'), reference]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toMatch(/^attestation +sha256:[0-9a-f]{12}… +[\d.]+ KiB  https:\/\/slsa.dev\/verification_summary\/v1  verified$/m);
    // The builder's key alone does not verify the VSA: the rebuilder signed it.
    const builderOnly = await runCli(rebuilder, ['attestations', '--key', join(work, 'builder.pub'), reference]);
    expect(builderOnly.code).toBe(1);
    expect(builderOnly.stderr).toContain('https://slsa.dev/verification_summary/v1: bad signature (not by this key, or altered)');

    const provenance = await statementOf(registry.address, 'team/app', honestDigest, 'https://slsa.dev/provenance/v1');
    const vsa = JSON.parse((await statementOf(registry.address, 'team/app', honestDigest, 'https://slsa.dev/verification_summary/v1')).toString('utf8'));
    expect(vsa._type).toBe('https://in-toto.io/Statement/v1');
    expect(vsa.subject).toEqual([{ name: 'image.oci.tar', digest: { sha256: honestDigest.slice(7) } }]);
    expect(vsa.predicate.verificationResult).toBe('PASSED');
    expect(vsa.predicate.policy).toEqual({ uri: 'urn:redo-ts:policy:rebuilt-identical:v1' });
    expect(vsa.predicate.verifier.id).toMatch(/^pkg:npm\/redo-ts@/);
    expect(vsa.predicate.resourceUri).toBe(`${registry.address}/team/app@${honestDigest}`);
    expect(vsa.predicate.inputAttestations[0].digest).toEqual({ sha256: createHash('sha256').update(provenance).digest('hex') });
    expect(vsa.predicate.matched.manifest).toBe(honestDigest);
    expect(vsa.predicate.matched.layers).toHaveLength(2);
    expect(vsa.predicate.matched.offline).toBe(true);
  });

  it('a checkout whose files differ from the provenance: names the first file, wanted and found, and attaches nothing', async () => {
    const reference = `${registry.address}/team/app:1.0`;
    const before = await referrers(registry.address, 'team/app', honestDigest);
    const greeting = join(rebuilder, 'app/etc/greeting');
    const wanted = createHash('sha256').update(readFileSync(greeting)).digest('hex');
    writeFileSync(greeting, 'hello, changed here\n');
    try {
      const found = createHash('sha256').update(readFileSync(greeting)).digest('hex');
      const result = await runCli(rebuilder, ['verify', '--attest', reference, '--key', join(work, 'rebuilder.key'), '--builder-key', join(work, 'builder.pub')]);
      expect(result.code).toBe(1);
      expect(result.stdout).toBe(
        `different: this checkout is not what ${reference} was built from\n  first difference: app/etc/greeting: wanted sha256:${wanted}, found sha256:${found}\nnothing attached\n`,
      );
    } finally {
      runTool('git', ['checkout', '--', 'app/etc/greeting'], { cwd: rebuilder });
    }
    expect(await referrers(registry.address, 'team/app', honestDigest)).toEqual(before);
  });

  it('an image that is not what its signed provenance says (a builder that lies): names the layer and member that differ, attaches nothing', async () => {
    // The liar builds other bytes, pushes them, and attaches the honest statement re-aimed at them, signed with the builder's key.
    writeFileSync(join(liar, 'app/etc/greeting'), 'hello, tampered\n');
    const pushed = await runCli(liar, ['push', 'image.tar', `${registry.address}/team/app:evil`]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const evilDigest = /pushed \S+@(sha256:[0-9a-f]{64})/.exec(pushed.stdout)![1]!;
    const honest = (await statementOf(registry.address, 'team/app', honestDigest, 'https://slsa.dev/provenance/v1')).toString('utf8');
    const forged = Buffer.from(honest.replace(honestDigest.slice(7), evilDigest.slice(7)));
    const client = new RegistryClient(registry.address, { env: {} });
    try {
      const manifest = await client.getManifest('team/app', evilDigest);
      await attachProvenance(client, 'team/app', { digest: evilDigest, size: manifest!.bytes.length, mediaType: manifest!.mediaType }, forged, loadSigningKey(join(work, 'builder.key')));
    } finally {
      client.close();
    }
    const before = await referrers(registry.address, 'team/app', evilDigest);

    const result = await runCli(rebuilder, ['verify', '--attest', `${registry.address}/team/app:evil`, '--key', join(work, 'rebuilder.key'), '--builder-key', join(work, 'builder.pub')]);
    expect(result.code).toBe(1);
    expect(result.stdout).toContain(`different: image.oci.tar rebuilt as ${honestDigest}, pushed as ${evilDigest}\n`);
    expect(result.stdout).toMatch(/  first difference: layer 2 \(pushed sha256:[0-9a-f]{64}, rebuilt sha256:[0-9a-f]{64}\): .*etc\/greeting/);
    expect(result.stdout).toContain('nothing attached\n');
    expect(await referrers(registry.address, 'team/app', evilDigest)).toEqual(before);
    expect(before.some((d) => d.annotations?.['in-toto.io/predicate-type'] === 'https://slsa.dev/verification_summary/v1')).toBe(false);
  });
});
