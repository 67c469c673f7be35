// Provenance on `redo-ts push --sign`: a SLSA v1 statement in a DSSE envelope attached as
// a referrer; openssl verifies the envelope's signature over the DSSE pre-authentication
// encoding; two clones of one commit at other paths give the same statement bytes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registryFixture } from '../helpers/registry-fixtures.js';
import { runCli } from '../helpers/rig.js';
import { hasTool, runTool, startRegistry, type LoopbackRegistry } from '../helpers/clients.js';

const tools = ['docker-registry', 'skopeo', 'openssl', 'git'];
const missing = tools.filter((t) => !hasTool(t));
if (missing.length > 0) console.warn(`registry provenance tests skipped: not installed: ${missing.join(', ')} (.ci/run installs them)`);
const describeIf = missing.length === 0 ? describe : describe.skip;

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z' };

interface Fetched {
  referrerManifest: { artifactType: string; subject: { digest: string }; layers: { mediaType: string; digest: string; annotations: Record<string, string> }[] };
  envelope: { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] };
  statement: Buffer;
}

async function getJson(url: string, accept: string): Promise<unknown> {
  const response = await fetch(url, { headers: { accept } });
  expect(response.status).toBe(200);
  return response.json();
}

/** The provenance referrer of `digest` in `repository`, found through the referrers tag schema's index. */
async function fetchProvenance(address: string, repository: string, digest: string): Promise<Fetched> {
  const index = (await getJson(`http://${address}/v2/${repository}/manifests/sha256-${digest.slice(7)}`, 'application/vnd.oci.image.index.v1+json')) as { manifests: { digest: string; artifactType: string }[] };
  const entries = index.manifests.filter((m) => m.artifactType === 'application/vnd.in-toto+json');
  expect(entries).toHaveLength(1);
  const referrerManifest = (await getJson(`http://${address}/v2/${repository}/manifests/${entries[0]!.digest}`, 'application/vnd.oci.image.manifest.v1+json')) as Fetched['referrerManifest'];
  const envelope = (await getJson(`http://${address}/v2/${repository}/blobs/${referrerManifest.layers[0]!.digest}`, '*/*')) as Fetched['envelope'];
  return { referrerManifest, envelope, statement: Buffer.from(envelope.payload, 'base64') };
}

describeIf('provenance on redo-ts push --sign', () => {
  let registry: LoopbackRegistry;
  let work: string;
  const clones: string[] = [];
  let commit: string;
  beforeAll(async () => {
    registry = await startRegistry();
    work = mkdtempSync(join(tmpdir(), 'redo-ts-provenance-'));
    const origin = registryFixture();
    try {
      runTool('git', ['init', '-q'], { cwd: origin.dir, env: gitEnv });
      runTool('git', ['add', '-A'], { cwd: origin.dir, env: gitEnv });
      runTool('git', ['commit', '-q', '-m', 'fixture'], { cwd: origin.dir, env: gitEnv });
      commit = runTool('git', ['rev-parse', 'HEAD'], { cwd: origin.dir }).stdout.trim();
      for (const name of ['first-clone', 'second/nested/clone']) {
        const dir = join(work, name);
        runTool('git', ['clone', '-q', origin.dir, dir], { env: gitEnv });
        clones.push(dir);
      }
    } finally {
      origin.remove();
    }
    expect((await runCli(work, ['key', 'generate', '--out', join(work, 'k')])).code).toBe(0);
  });
  afterAll(async () => {
    await registry?.stop();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('two clones of one commit at other paths, built with other umasks, attach byte-identical SLSA v1 statements (kept as they are when pushed again), checked field by field', async () => {
    const statements: Buffer[] = [];
    const digests: string[] = [];
    for (const [i, dir] of clones.entries()) {
      const reference = `${registry.address}/clone${i}/app:1.0`;
      const pushed = await runCli(dir, ['push', '--sign', join(work, 'k.key'), 'image.tar', reference], { umask: i === 0 ? '022' : '077' });
      expect(pushed.stderr).not.toContain('redo: ');
      expect(pushed.code).toBe(0);
      expect(pushed.stdout).toMatch(/^provenance sha256:[0-9a-f]{12}…  statement [\d.]+ KiB, envelope [\d.]+ KiB, manifest \d+ B$/m);
      const digest = /pushed \S+@(sha256:[0-9a-f]{64})/.exec(pushed.stdout)![1]!;
      digests.push(digest);
      // Never an extra platform entry: the tag still names the image's own manifest, as built.
      const raw = JSON.parse(runTool('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${reference}`]).stdout) as { mediaType: string; manifests?: unknown };
      expect(raw.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(raw.manifests).toBeUndefined();
      const fetched = await fetchProvenance(registry.address, `clone${i}/app`, digest);
      expect(fetched.referrerManifest.artifactType).toBe('application/vnd.in-toto+json');
      expect(fetched.referrerManifest.subject.digest).toBe(digest);
      expect(fetched.referrerManifest.layers[0]!.mediaType).toBe('application/vnd.dsse.envelope.v1+json');
      expect(fetched.referrerManifest.layers[0]!.annotations['in-toto.io/predicate-type']).toBe('https://slsa.dev/provenance/v1');
      expect(fetched.envelope.payloadType).toBe('application/vnd.in-toto+json');

      // An independent verifier: openssl over the DSSE pre-authentication encoding.
      const pae = Buffer.concat([Buffer.from(`DSSEv1 ${fetched.envelope.payloadType.length} ${fetched.envelope.payloadType} ${fetched.statement.length} `), fetched.statement]);
      writeFileSync(join(work, 'pae'), pae);
      writeFileSync(join(work, 'pae.sig'), Buffer.from(fetched.envelope.signatures[0]!.sig, 'base64'));
      expect(runTool('openssl', ['dgst', '-sha256', '-verify', join(work, 'k.pub'), '-signature', join(work, 'pae.sig'), join(work, 'pae')]).stdout.trim()).toBe('Verified OK');
      statements.push(fetched.statement);
    }
    expect(digests[1]).toBe(digests[0]);
    expect(statements[1]!.toString('utf8')).toBe(statements[0]!.toString('utf8'));

    // The second clone pushing to the first one's repository: the same statement signed by
    // the same key is there already, so signature and provenance are kept, byte for byte.
    const indexUrl = `http://${registry.address}/v2/clone0/app/manifests/sha256-${digests[0]!.slice(7)}`;
    const before = await getJson(indexUrl, 'application/vnd.oci.image.index.v1+json');
    const again = await runCli(clones[1]!, ['push', '--sign', join(work, 'k.key'), 'image.tar', `${registry.address}/clone0/app:1.0`]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^signature .*  \(already attached\)$/m);
    expect(again.stdout).toMatch(/^provenance .*  \(already attached\)$/m);
    // (push re-lists the SBOM referrers last, so compare the entries, not their order.)
    const entries = (index: any): object[] => [...index.manifests].sort((a: { digest: string }, b: { digest: string }) => (a.digest < b.digest ? -1 : 1));
    expect(entries(await getJson(indexUrl, 'application/vnd.oci.image.index.v1+json'))).toEqual(entries(before));

    // SLSA provenance v1 / in-toto Statement v1, field by field.
    const statement = JSON.parse(statements[0]!.toString('utf8')) as Record<string, any>;
    expect(Object.keys(statement).sort()).toEqual(['_type', 'predicate', 'predicateType', 'subject']);
    expect(statement._type).toBe('https://in-toto.io/Statement/v1');
    expect(statement.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(statement.subject).toEqual([{ name: 'image.oci.tar', digest: { sha256: digests[0]!.slice(7) } }]);
    expect(Object.keys(statement.predicate).sort()).toEqual(['buildDefinition', 'runDetails']);
    const definition = statement.predicate.buildDefinition;
    expect(definition.buildType).toBe('urn:redo-ts:build-type:image:v1');
    expect(definition.externalParameters).toEqual({ target: 'image.oci.tar' });
    expect(definition.internalParameters).toEqual({ SOURCE_DATE_EPOCH: '0' });
    const dependencies = definition.resolvedDependencies as { name: string; uri?: string; digest: Record<string, string> }[];
    expect(dependencies[0]).toEqual({ name: 'project', uri: 'git+commit', digest: { gitCommit: commit } });
    const names = dependencies.slice(1).map((d) => d.name);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['image.yaml', 'app/etc/greeting', 'busybox/bin/busybox', 'rules/default.image.json.do.ts']));
    for (const dependency of dependencies.slice(1)) expect(Object.keys(dependency.digest)).toEqual(['sha256']);
    const busybox = dependencies.find((d) => d.name === 'busybox/bin/busybox')!;
    expect(busybox.digest.sha256).toBe(runTool('sha256sum', ['/bin/busybox']).stdout.split(' ')[0]);
    expect(statement.predicate.runDetails.builder.id).toMatch(/^pkg:npm\/redo-ts@\d+\.\d+\.\d+/);
    expect(statement.predicate.runDetails.metadata).toEqual({});
    // Nothing from the clock or the host: no path of either clone appears.
    for (const dir of clones) expect(statements[0]!.toString('utf8')).not.toContain(dir);
  });
});
