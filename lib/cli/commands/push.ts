/** `redo-ts push [--insecure] TARGET REFERENCE`: assemble an image target (checked) and push it from the image store, uploading only missing blobs. */

import * as path from 'node:path';
import { toTargetPath } from '../../engine/paths.js';
import { RedoError } from '../../errors.js';
import { openImageRecord } from '../../image/image-view.js';
import { BlobStore } from '../../image/blob-store.js';
import { requireDescription } from '../../inventory/inventory.js';
import { attachToPushedImage, type Attached } from '../../attest/attach.js';
import { loadSigningKey, passphraseVariable, signingKeyVariable, type SigningKey } from '../../attest/key.js';
import { provenanceStatement } from '../../attest/provenance.js';
import { RegistryClient } from '../../registry/client.js';
import { collectProvenanceInput } from '../provenance-input.js';
import { pushStoredImage, type PushReport } from '../../registry/push.js';
import { parseReference } from '../../registry/reference.js';
import type { Command } from '../command.js';
import { parseBuildOptions, projectRoot, runBuild } from '../session.js';

const usage = `Usage: redo-ts push [--insecure] [--sign KEY] TARGET REFERENCE

Brings the image up to date (its assembly NAME.image.json, which runs every check
the image has: an image that fails one is not pushed; TARGET may be NAME.tar,
NAME.oci.tar or NAME), then pushes it from the project's image store (.redo/store)
to REFERENCE, HOST[:PORT]/REPOSITORY[:TAG] (tag default: latest). Each blob is
checked with HEAD and uploaded only when the registry lacks it, or mounted from
another repository of the same registry that an earlier push (or the base image)
put it in; then the manifest (the index, for a multi-arch image) goes under the tag.
Prints each blob as uploaded, mounted or skipped with its size, and the pushed
digest, which equals the digest in NAME.oci.tar's index.json.

A registry on a loopback address (127.0.0.0/8, ::1, localhost) is spoken to over
plain HTTP, any other over HTTPS.

  --insecure   plain HTTP for a registry that is not on a loopback address
  --sign KEY   after the push, sign the pushed digest with the private key KEY (from
               redo-ts key generate; default $${signingKeyVariable}, passphrase in
               $${passphraseVariable}) and attach the signature as cosign does (tag
               sha256-<hex>.sig, and a referrer); for a multi-arch image, the
               index and each platform manifest; then attach a signed SLSA
               provenance statement (in-toto v1, DSSE) as a referrer of the
               pushed manifest (the index)

Credentials: $REGISTRY_AUTH_FILE, \${XDG_RUNTIME_DIR}/containers/auth.json,
~/.config/containers/auth.json, ~/.docker/config.json (the first with an entry for
the registry), sent as Basic auth or exchanged for a bearer token as the registry asks.`;

/** The OCI layout target for an image target name: NAME.tar and NAME give NAME.oci.tar. Pure. */
export function layoutTargetOf(target: string): string {
  if (target.endsWith('.oci.tar')) return target;
  if (target.endsWith('.image.json')) return `${target.slice(0, -'.image.json'.length)}.oci.tar`;
  if (target.endsWith('.tar')) return `${target.slice(0, -'.tar'.length)}.oci.tar`;
  return `${target}.oci.tar`;
}

/** The assembly target for an image target name: NAME.tar, NAME.oci.tar and NAME give NAME.image.json. Pure. */
export function assemblyTargetOf(target: string): string {
  if (target.endsWith('.image.json')) return target;
  return `${layoutTargetOf(target).slice(0, -'.oci.tar'.length)}.image.json`;
}

/** Human size: 512 B, 3.4 KiB, 12.0 MiB. Pure. */
export function formatBytes(sizeBytes: number): string {
  if (sizeBytes < 1024) return `${sizeBytes} B`;
  if (sizeBytes < 1 << 20) return `${(sizeBytes / 1024).toFixed(1)} KiB`;
  return `${(sizeBytes / (1 << 20)).toFixed(1)} MiB`;
}

/** The lines `redo-ts push` prints for a report. Pure. */
export function describePush(report: PushReport): string[] {
  const lines = report.blobs.map((blob) => `${blob.action.padEnd(8)} ${blob.digest.slice(0, 19)}…  ${formatBytes(blob.sizeBytes).padStart(10)}  ${blob.role}`);
  for (const manifest of report.manifests) {
    lines.push(`${'manifest'.padEnd(8)} ${manifest.digest.slice(0, 19)}…  ${formatBytes(manifest.sizeBytes).padStart(10)}  ${manifest.role === 'top' ? (manifest.mediaType.includes('index') ? 'index' : 'manifest') : `${manifest.role} manifest`}`);
  }
  // The summary counts the image's own blobs; its referrers (SBOMs) get a line of their own.
  const isReferrer = (b: { role: string }): boolean => b.role.startsWith('referrer ');
  const sum = (action: string, ofReferrers = false): { count: number; bytes: number } => {
    const chosen = report.blobs.filter((b) => b.action === action && isReferrer(b) === ofReferrers);
    return { count: chosen.length, bytes: chosen.reduce((total, b) => total + b.sizeBytes, 0) };
  };
  const uploaded = sum('uploaded');
  const mounted = sum('mounted');
  const skipped = sum('skipped');
  const imageManifests = report.manifests.filter((m) => !isReferrer(m)).length;
  lines.push(
    `pushed ${report.reference}@${report.digest}: ${uploaded.count} blob${uploaded.count === 1 ? '' : 's'} uploaded (${formatBytes(uploaded.bytes)}), ` +
      `${mounted.count > 0 ? `${mounted.count} mounted (${formatBytes(mounted.bytes)}), ` : ''}` +
      `${skipped.count} skipped (${formatBytes(skipped.bytes)}), ${imageManifests} manifest${imageManifests === 1 ? '' : 's'}`,
  );
  const referrerManifests = report.manifests.filter(isReferrer).length;
  if (referrerManifests > 0) {
    const uploadedReferrers = sum('uploaded', true);
    lines.push(`referrers: ${referrerManifests} artifact${referrerManifests === 1 ? '' : 's'} pushed by digest, ${uploadedReferrers.count} blob${uploadedReferrers.count === 1 ? '' : 's'} uploaded (${formatBytes(uploadedReferrers.bytes)})`);
  }
  return lines;
}

/** The lines `redo-ts push --sign` prints for what it attached. Pure. */
export function describeAttached(attached: Attached[]): string[] {
  return attached.map((a) => `${a.kind.padEnd(10)} ${a.manifestDigest.slice(0, 19)}…  ${Object.entries(a.sizes).map(([k, v]) => `${k} ${formatBytes(v)}`).join(', ')}${a.tag === undefined ? '' : `  tag ${a.tag}`}${a.isReused ? '  (already attached)' : ''}`);
}

const command: Command = {
  summary: 'build an image target and push it to a registry (only missing blobs)',
  usage,
  async run(args, io) {
    let isInsecure = false;
    let keyPath = io.env[signingKeyVariable] === '' ? undefined : io.env[signingKeyVariable];
    const positional: string[] = [];
    for (let i = 0; i < args.length; i += 1) {
      const arg = args[i]!;
      if (arg === '--insecure') isInsecure = true;
      else if (arg === '--sign') {
        keyPath = args[i + 1];
        if (keyPath === undefined) throw new RedoError('ERR_USAGE', 'redo: "push": --sign wants a KEY file', { hint: usage.split('\n')[0] });
        i += 1;
      }
      else if (arg.startsWith('-')) throw new RedoError('ERR_USAGE', `redo: "push": unknown option ${arg}`, { hint: usage.split('\n')[0] });
      else positional.push(arg);
    }
    if (positional.length !== 2) {
      throw new RedoError('ERR_USAGE', 'redo: "push": wants a TARGET and a REFERENCE', { details: [`found: ${positional.length} argument${positional.length === 1 ? '' : 's'}`], hint: usage.split('\n')[0] });
    }
    const [target, reference] = positional as [string, string];
    const layout = layoutTargetOf(target);
    const assembly = assemblyTargetOf(target);
    // A bad reference or a target that is not an image (no NAME.yaml beside it) is
    // refused before anything is built, as sbom and audit refuse a non-image.
    const parsed = parseReference(reference);
    // The key is read before the build, so a wrong passphrase costs no build and no push.
    const key: SigningKey | undefined = keyPath === undefined ? undefined : loadSigningKey(path.resolve(io.cwd, keyPath), io.env[passphraseVariable]);
    const root = projectRoot(io);
    requireDescription(root, toTargetPath(root, io.cwd, target.endsWith('.tar') ? target : layout));
    // The assembly, not an archive: every check guards the push, and no archive is written.
    const status = await runBuild(parseBuildOptions([assembly]), io);
    if (status !== 0) return status;
    const recordPath = path.resolve(io.cwd, assembly);
    const store = BlobStore.ofProject(root);
    // The record's head from the store when it is current (most of the record is the SBOMs' inline bytes).
    const record = await openImageRecord(store, recordPath, path.relative(root, recordPath), `"${reference}"`);
    const report = await pushStoredImage(record, store, reference, { env: io.env, isInsecure });
    io.stdout.write(`${describePush(report).join('\n')}\n`);
    if (key !== undefined) {
      const client = new RegistryClient(parsed.host, { env: io.env, isInsecure, label: parsed.text });
      try {
        // The hook: the manifest as the registry holds it now, then what is attached to it.
        const manifest = await client.getManifest(parsed.repository, report.digest);
        if (manifest === undefined) throw new RedoError('ERR_REGISTRY_REJECTED', `redo: "${parsed.text}": the pushed manifest ${report.digest} is not in the registry`);
        // The sources are what the assembly's build recorded; the subject keeps the image's layout name.
        const input = await collectProvenanceInput(root, toTargetPath(root, io.cwd, assembly), report.digest, io.env);
        const statement = provenanceStatement({ ...input, target: toTargetPath(root, io.cwd, layout) });
        // A multi-arch image: its platform manifests, as the pushed index lists them, are signed too.
        const listed = (JSON.parse(manifest.bytes.toString('utf8')) as { manifests?: Array<{ digest: string; size: number; mediaType: string }> }).manifests;
        const platformManifests = report.mediaType.includes('index') && Array.isArray(listed) ? listed.map(({ digest, size, mediaType }) => ({ digest, size, mediaType })) : [];
        const attached = await attachToPushedImage({ client, reference: parsed, manifestDigest: report.digest, manifestBytes: manifest.bytes, mediaType: report.mediaType, key, statement, platformManifests });
        io.stdout.write(`${describeAttached(attached).join('\n')}\n`);
      } finally {
        client.close();
      }
    }
    return 0;
  },
};
export default command;
