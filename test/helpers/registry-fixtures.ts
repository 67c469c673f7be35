/** Fixture projects for the registry tests: the pushed app image and an image built on it. */

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
