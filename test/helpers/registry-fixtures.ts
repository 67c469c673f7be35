/** Fixture projects for the registry tests: the pushed app image and an image built on it. */

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliEnvironment, repoRoot } from './rig.js';
import { copyFixture, type ProjectCopy } from './project-copy.js';
import { runTool } from './clients.js';

/** Fixture 601 with the host's static busybox in its base layer folder. */
export function registryFixture(): ProjectCopy {
  const project = copyFixture('601-registry');
  mkdirSync(join(project.dir, 'busybox', 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(project.dir, 'busybox', 'bin', 'busybox'));
  return project;
}

/** Fixture 602 (an image on a base) with REGISTRY in its image.yaml replaced by `address`. */
export function onBaseFixture(address: string): ProjectCopy {
  const project = copyFixture('602-on-base');
  const file = join(project.dir, 'image.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('REGISTRY', address));
  return project;
}

/**
 * The digest index.json of an OCI layout archive names (the image's manifest or index).
 * A push assembles the image without writing the archive, so the archive (a view of
 * the same assembly) is brought up to date first: the push and the archive must agree.
 */
export function layoutDigest(project: ProjectCopy, archive: string): string {
  const built = spawnSync(process.execPath, [join(repoRoot, 'bin', 'redo-ts.js'), archive], { cwd: project.dir, env: cliEnvironment(), encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`redo-ts ${archive} failed: ${built.stderr}`);
  const index = JSON.parse(runTool('tar', ['-xOf', join(project.dir, archive), 'index.json']).stdout) as { manifests: { digest: string }[] };
  return index.manifests[0]!.digest;
}

/** Blob lines of `redo-ts push` output as "ACTION ROLE", e.g. "uploaded layer 2". */
export function blobActions(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((line) => /^(uploaded|skipped|mounted) /.test(line))
    .map((line) => `${line.split(' ')[0]} ${line.replace(/^.*(KiB|MiB| B) {2}/, '')}`)
    // The image's own blobs; its referrers (the SBOM artifacts) are checked on their own.
    .filter((action) => !action.includes(' referrer '));
}

/**
 * Runs `skopeo copy docker://REF dir:…` (then removes the copy) under a policy that
 * requires a sigstoreSigned signature by `publicKey` for the registry at `address`,
 * whose signatures skopeo looks up as sigstore attachments; `extra` are skopeo's global
 * options (e.g. `--override-arch arm64`). Policy files are written into `work`.
 */
export function copyUnderPolicy(work: string, address: string, reference: string, publicKey: string, extra: string[] = []): { status: number | null; stderr: string } {
  const registriesDir = join(work, 'registries.d');
  mkdirSync(registriesDir, { recursive: true });
  writeFileSync(join(registriesDir, 'loopback.yaml'), `docker:\n  ${address}:\n    use-sigstore-attachments: true\n`);
  writeFileSync(
    join(work, 'policy.json'),
    JSON.stringify({
      default: [{ type: 'reject' }],
      transports: { docker: { [address]: [{ type: 'sigstoreSigned', keyPath: publicKey }] }, dir: { '': [{ type: 'insecureAcceptAnything' }] } },
    }),
  );
  const out = join(work, `copy-${Math.random().toString(36).slice(2)}`);
  const result = spawnSync('skopeo', ['--policy', join(work, 'policy.json'), '--registries.d', registriesDir, ...extra, 'copy', '--src-tls-verify=false', `docker://${reference}`, `dir:${out}`], { encoding: 'utf8' });
  rmSync(out, { recursive: true, force: true });
  return { status: result.status, stderr: result.stderr };
}
