// Every output of an image is a view of one checked assembly (issue 18 item 4, issue 20):
// an image whose audit finds an OpenSSH private key gets no NAME.tar, no NAME.oci.tar,
// and `redo-ts push` uploads nothing to a loopback docker-registry; once the finding is
// allowed, the same push goes through (so the registry and the push do work).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasTool, startRegistry, type LoopbackRegistry } from '../helpers/clients.js';
import { copyFixture, type ProjectCopy } from '../helpers/project-copy.js';

const describeIf = hasTool('docker-registry') ? describe : describe.skip;
if (!hasTool('docker-registry')) console.warn('checked-outputs push test skipped: docker-registry not installed (.ci/run installs it)');

/** What the registry holds: its repositories, and the tags of `repository`. */
async function registryContents(address: string, repository: string): Promise<{ repositories: string[]; tags: string[] }> {
  const catalog = (await (await fetch(`http://${address}/v2/_catalog`)).json()) as { repositories?: string[] };
  const tagsReply = await fetch(`http://${address}/v2/${repository}/tags/list`);
  const tags = tagsReply.status === 200 ? (((await tagsReply.json()) as { tags?: string[] | null }).tags ?? []) : [];
  return { repositories: catalog.repositories ?? [], tags };
}

describeIf('an image whose audit fails has no output at all', () => {
  let project: ProjectCopy;
  let registry: LoopbackRegistry;
  const image = 'keyed';

  beforeAll(async () => {
    registry = await startRegistry();
    project = copyFixture('601-audit');
    writeFileSync(
      join(project.dir, `${image}.spec.yaml`),
      [
        `name: ${image}`,
        'version: "1"',
        'build:',
        `  - ${JSON.stringify('mkdir -p "$DESTDIR/root/.ssh"')}`,
        `  - ${JSON.stringify(`printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\\nb3Bl\\n-----END OPENSSH PRIVATE KEY-----\\n' > "$DESTDIR/root/.ssh/id_ed25519"`)}`,
        'files:',
        '  - path: /root/.ssh/**',
        '',
      ].join('\n'),
    );
    writeFileSync(join(project.dir, `${image}.yaml`), `tags: [localhost/keyed:1]\nlayers: [base.fragment.tar, ${image}.fragment.tar]\naudit: true\n`);
  });
  afterAll(async () => {
    await registry?.stop();
    project?.remove();
  });

  it('builds neither archive', async () => {
    const docker = await project.redo([`${image}.tar`]);
    expect(docker.status).toBe(1);
    expect(docker.stderr).toContain(`redo: "${image}.tar": the audit found 1 problem`);
    expect(docker.stderr).toContain('private-key  /root/.ssh/id_ed25519');
    const oci = await project.redo([`${image}.oci.tar`]);
    expect(oci.status).toBe(1);
    expect(oci.stderr).toContain(`redo: "${image}.tar": the audit found 1 problem`);
    for (const output of [`${image}.tar`, `${image}.oci.tar`, `${image}.image.json`]) expect(existsSync(join(project.dir, output)), output).toBe(false);
  });

  it('pushes nothing: the registry has no repository, tag or blob of it', async () => {
    const pushed = await project.redo(['push', `${image}.tar`, `${registry.address}/audit/${image}:1`]);
    expect(pushed.status).toBe(1);
    expect(pushed.stdout).toBe('');
    expect(pushed.stderr).toContain(`redo: "${image}.tar": the audit found 1 problem`);
    expect(await registryContents(registry.address, `audit/${image}`)).toEqual({ repositories: [], tags: [] });
    expect(existsSync(join(project.dir, `${image}.oci.tar`))).toBe(false);
  });

  it('once the finding is allowed, builds both archives and pushes the image', async () => {
    writeFileSync(join(project.dir, `${image}.yaml`), `tags: [localhost/keyed:1]\nlayers: [base.fragment.tar, ${image}.fragment.tar]\naudit: true\nauditAllow: [private-key]\n`);
    const pushed = await project.redo(['push', `${image}.tar`, `${registry.address}/audit/${image}:1`]);
    expect(pushed.status, pushed.stderr).toBe(0);
    const contents = await registryContents(registry.address, `audit/${image}`);
    expect(contents.repositories).toEqual([`audit/${image}`]);
    // The tag, and the referrers tag of its SBOMs (sha256-<manifest hex>).
    expect(contents.tags).toContain('1');
    const built = await project.redo([`${image}.tar`, `${image}.oci.tar`]);
    expect(built.status, built.stderr).toBe(0);
    for (const output of [`${image}.tar`, `${image}.oci.tar`]) expect(existsSync(join(project.dir, output)), output).toBe(true);
  });
});
