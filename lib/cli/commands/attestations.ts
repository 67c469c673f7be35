/** `redo-ts attestations [--insecure] [--key PUB] REFERENCE`: list what is attached to an image and check its signatures. */

import * as path from 'node:path';
import { listAttachments, type Attachment, type Verdict } from '../../attest/attachments.js';
import { loadPublicKey } from '../../attest/key.js';
import { RedoError } from '../../errors.js';
import { RegistryClient } from '../../registry/client.js';
import { parseReference } from '../../registry/reference.js';
import type { Command } from '../command.js';
import { formatBytes } from './push.js';

const usage = `Usage: redo-ts attestations [--insecure] [--key PUB] REFERENCE

Lists what is attached to the image REFERENCE (HOST[:PORT]/REPOSITORY[:TAG] or
@sha256:…): its signatures (the cosign tag sha256-<hex>.sig), its attestations
(in-toto statements in DSSE envelopes, e.g. SLSA provenance) and other referrers
(SBOMs), found through the referrers tag schema's index.

With --key PUB (a PEM public key, e.g. from redo-ts key generate), checks each
signature and attestation: a valid ECDSA P-256 signature by that key, for this image's
digest, and for signatures the name: HOST/REPO:TAG when REFERENCE has a tag (what
containers-policy.json's default matchRepoDigestOrExact wants). Exits 1 when no
signature verifies for this digest and name, or when an attestation does not verify;
signatures by other keys or for other names are listed and, as under a
sigstoreSigned policy, do not count against the image.

  --key PUB    public key to check signatures with (repeat for several: the builder's
               and a rebuilder's; any one may have signed each)
  --insecure   plain HTTP for a registry that is not on a loopback address`;

const verdictText: Record<Verdict, string> = {
  verified: 'verified',
  unchecked: 'not checked (no --key)',
  unsigned: 'unsigned',
  'bad-signature': 'bad signature (not by this key, or altered)',
  'other-digest': 'signed for another image digest',
  'other-identity': 'valid, but for another name',
  malformed: 'malformed',
};

/** The lines `redo-ts attestations` prints. Pure. */
export function describeAttachments(reference: string, digest: string, attachments: Attachment[]): string[] {
  const lines = [`image ${reference}@${digest}`];
  if (attachments.length === 0) lines.push('nothing attached');
  for (const a of attachments) lines.push(`${a.kind.padEnd(11)} ${a.manifestDigest.slice(0, 19)}…  ${formatBytes(a.sizeBytes).padStart(9)}  ${a.what}  ${verdictText[a.verdict]}`);
  return lines;
}

const command: Command = {
  summary: 'list the signatures, attestations and SBOMs attached to a pushed image, and check them with --key',
  usage,
  async run(args, io) {
    let isInsecure = false;
    const keyPaths: string[] = [];
    const positional: string[] = [];
    for (let i = 0; i < args.length; i += 1) {
      const arg = args[i]!;
      if (arg === '--insecure') isInsecure = true;
      else if (arg === '--key') {
        const keyPath = args[i + 1];
        if (keyPath !== undefined) keyPaths.push(keyPath);
        else throw new RedoError('ERR_USAGE', 'redo: "attestations": --key wants a PUB file', { hint: usage.split('\n')[0] });
        i += 1;
      } else if (arg === '--help' || arg === '-h') {
        io.stdout.write(`${usage}\n`);
        return 0;
      } else if (arg.startsWith('-')) throw new RedoError('ERR_USAGE', `redo: "attestations": unknown option ${arg}`, { hint: usage.split('\n')[0] });
      else positional.push(arg);
    }
    if (positional.length !== 1) throw new RedoError('ERR_USAGE', 'redo: "attestations": wants one REFERENCE', { details: [`found: ${positional.length} arguments`], hint: usage.split('\n')[0] });
    const reference = parseReference(positional[0]!);
    const publicKeys = keyPaths.map((file) => loadPublicKey(path.resolve(io.cwd, file)));
    const client = new RegistryClient(reference.host, { env: io.env, isInsecure, label: reference.text });
    try {
      const report = await listAttachments(client, reference, publicKeys);
      io.stdout.write(`${describeAttachments(reference.text, report.digest, report.attachments).join('\n')}\n`);
      if (publicKeys.length === 0) return 0;
      // As containers/image does: one good signature suffices; others (other keys, other names) are only listed.
      const failed = report.attachments.filter((a) => a.kind === 'attestation' && a.verdict !== 'verified');
      const signed = report.attachments.filter((a) => a.kind === 'signature' && a.verdict === 'verified');
      if (failed.length > 0 || signed.length === 0) {
        throw new RedoError('ERR_ATTESTATION', `redo: "${reference.text}": ${signed.length === 0 ? 'no signature by the key for this image and name' : `${failed.length} attachment${failed.length === 1 ? '' : 's'} did not verify`}`, {
          details: [
            `key${keyPaths.length === 1 ? '' : 's'}: ${keyPaths.join(', ')}`,
            `image: ${report.digest}`,
            ...failed.map((a) => `${a.kind} ${a.manifestDigest}: ${a.what}: ${verdictText[a.verdict]}`),
          ],
          hint: signed.length === 0 ? 'the image was not signed with this key under this name (was the tag moved?); do not use it' : 'the registry holds attachments this key did not make for this image; do not trust them',
        });
      }
      return 0;
    } finally {
      client.close();
    }
  },
};
export default command;
