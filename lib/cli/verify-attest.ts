/**
 * `redo-ts verify --attest REFERENCE`: check a pushed image's provenance against this
 * checkout, rebuild its target with the network off, compare, and on a match attach a
 * signed SLSA verification summary (VSA).
 */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fetchStatement } from '../attest/attachments.js';
import { loadPublicKey, loadSigningKey, passphraseVariable, type SigningKey } from '../attest/key.js';
import { attachStatement, provenancePredicateType, type Material } from '../attest/provenance.js';
import { RedoError } from '../errors.js';
import { compareArchives, describeDifference } from '../image/archive-diff.js';
import { canonicalJson } from '../image/image-config.js';
import { RegistryClient } from '../registry/client.js';
import { openLayoutArchive } from '../registry/layout-archive.js';
import { parseReference } from '../registry/reference.js';
import type { CommandIO } from './command.js';
import { binFile } from './package-files.js';
import { redoVersion } from './provenance-input.js';
import { projectRoot } from './session.js';

/** SLSA verification summary v1 predicate type. */
export const vsaPredicateType = 'https://slsa.dev/verification_summary/v1';
/** The policy a redo-ts VSA reports: the image was rebuilt from its provenance's materials, offline, to the same bytes. */
export const rebuildPolicy = 'urn:redo-ts:policy:rebuilt-identical:v1';

export const verifyAttestUsage = `Usage: redo-ts verify --attest REFERENCE --key KEY [--builder-key PUB] [--insecure]

Run in a checkout of the project an image was built from. Fetches the image REFERENCE
and its SLSA provenance (checked with --builder-key, default KEY's public half),
checks that every source file the provenance names has the same sha256 here, rebuilds
the target it names with SOURCE_DATE_EPOCH from it (the pinned sources are fetched
first, then redo-ts verify rebuilds in a scratch copy with the network off, in a new
network namespace), and compares the manifest digest. On a match it signs a SLSA
verification summary with KEY (passphrase in $${passphraseVariable}) naming this
rebuilder and what matched, and attaches it as a referrer. On any mismatch it names
the first difference (file of the checkout, or layer and member of the image) and
attaches nothing.`;

interface Dependency {
  name: string;
  uri?: string;
  digest: Record<string, string>;
}

/** Runs `verify --attest`; returns the exit status (0 attached, 1 mismatch). Throws RedoError for unusable input. */
export async function runVerifyAttest(args: string[], io: CommandIO): Promise<number> {
  let keyPath: string | undefined;
  let builderKeyPath: string | undefined;
  let isInsecure = false;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i]!;
    if (arg === '--attest') continue;
    if (arg === '--insecure') isInsecure = true;
    else if (arg === '--key' || arg === '--builder-key') {
      const value = args[i + 1];
      if (value === undefined) throw new RedoError('ERR_USAGE', `redo: "verify": ${arg} wants a file`, { hint: verifyAttestUsage.split('\n')[0] });
      if (arg === '--key') keyPath = value;
      else builderKeyPath = value;
      i += 1;
    } else if (arg.startsWith('-')) throw new RedoError('ERR_USAGE', `redo: "verify": unknown option ${arg} with --attest`, { hint: verifyAttestUsage.split('\n')[0] });
    else positional.push(arg);
  }
  if (positional.length !== 1 || keyPath === undefined) {
    throw new RedoError('ERR_USAGE', 'redo: "verify --attest": wants one REFERENCE and --key KEY', { hint: verifyAttestUsage.split('\n')[0] });
  }
  const key: SigningKey = loadSigningKey(path.resolve(io.cwd, keyPath), io.env[passphraseVariable]);
  const builderKey = builderKeyPath === undefined ? key.publicKey : loadPublicKey(path.resolve(io.cwd, builderKeyPath));
  const reference = parseReference(positional[0]!);
  const root = projectRoot(io);
  const client = new RegistryClient(reference.host, { env: io.env, isInsecure, label: reference.text });
  try {
    const image = await client.getManifest(reference.repository, reference.digest ?? reference.tag ?? 'latest');
    if (image === undefined) throw new RedoError('ERR_REGISTRY_REFERENCE', `redo: "${reference.text}": no such image in the registry`, { hint: 'check the tag' });
    const provenance = await fetchStatement(client, reference.repository, image.digest, provenancePredicateType, [builderKey]);
    if (provenance === undefined) {
      throw new RedoError('ERR_ATTESTATION', `redo: "${reference.text}": no provenance attached to ${image.digest}`, { hint: 'the builder pushes it with redo-ts push --sign; nothing to rebuild from' });
    }
    if (provenance.verdict !== 'verified') {
      throw new RedoError('ERR_ATTESTATION', `redo: "${reference.text}": the provenance does not verify (${provenance.verdict})`, {
        details: [`provenance: ${provenance.manifestDigest}`, `builder key: ${builderKeyPath ?? `${keyPath} (its public half)`}`],
        hint: 'pass the builder\'s public key with --builder-key',
      });
    }
    const statement = JSON.parse(provenance.statement.toString('utf8')) as {
      subject: { name: string }[];
      predicate: { buildDefinition: { internalParameters?: { SOURCE_DATE_EPOCH?: string }; resolvedDependencies: Dependency[] } };
    };
    const target = statement.subject[0]!.name;
    const sourceDateEpoch = statement.predicate.buildDefinition.internalParameters?.SOURCE_DATE_EPOCH ?? '0';

    // 1. The checkout must hold the files the provenance names, byte for byte.
    const differences: string[] = [];
    for (const dependency of statement.predicate.buildDefinition.resolvedDependencies) {
      const wanted = dependency.digest.sha256;
      if (dependency.uri !== undefined || wanted === undefined) continue;
      const file = path.join(root, dependency.name);
      const found = existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : '(missing)';
      if (found !== wanted) differences.push(`${dependency.name}: wanted sha256:${wanted}, found ${found === '(missing)' ? found : `sha256:${found}`}`);
    }
    if (differences.length > 0) {
      io.stdout.write(`different: this checkout is not what ${reference.text} was built from\n  first difference: ${differences[0]}\nnothing attached\n`);
      io.stderr.write(differences.slice(1, 6).map((d) => `  also: ${d}\n`).join(''));
      return 1;
    }

    // 2. Build (fetching pinned sources, checked by their pins), then rebuild in a scratch copy offline.
    const env: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(io.env)) if (!name.startsWith('REDO_') || name === 'REDO_TS_CACHE') env[name] = value;
    env.SOURCE_DATE_EPOCH = sourceDateEpoch;
    const bin = binFile;
    const built = spawnSync(process.execPath, [bin, target], { cwd: root, env, encoding: 'utf8' });
    if (built.status !== 0) throw new RedoError('ERR_RULE_FAILED', `redo: "${target}": the build for verify --attest failed`, { details: (built.stderr ?? '').trim().split('\n').slice(-5) });
    // Root may make a network namespace directly; anyone else through a user namespace (-r).
    const unshareFlags = process.getuid?.() === 0 ? ['-n'] : ['-r', '-n'];
    const offline = spawnSync('unshare', [...unshareFlags, process.execPath, bin, 'verify', target], { cwd: root, env, encoding: 'utf8' });
    if (offline.error !== undefined) throw new RedoError('ERR_RULE_FAILED', `redo: "${target}": cannot start the offline rebuild (unshare ${unshareFlags.join(' ')})`, { details: [offline.error.message], hint: 'install util-linux (unshare) and allow user namespaces' });
    if (offline.status !== 0) {
      io.stdout.write(`different: ${target} does not rebuild to the same bytes here (offline, scratch copy)\n${offline.stdout}${offline.stderr}nothing attached\n`);
      return 1;
    }

    // 3. The rebuilt image against the pushed one, layer by layer.
    const layout = openLayoutArchive(path.join(root, target));
    const localDigest = layout.index.manifests[0]!.digest;
    if (localDigest !== image.digest) {
      io.stdout.write(`different: ${target} rebuilt as ${localDigest}, pushed as ${image.digest}\n${await firstLayerDifference(client, reference.repository, image.bytes, layout)}nothing attached\n`);
      return 1;
    }

    // 4. Match: a verification summary, signed by this rebuilder.
    const manifest = JSON.parse(image.bytes.toString('utf8')) as { config?: { digest: string }; layers?: { digest: string }[]; manifests?: { digest: string }[] };
    const vsa = Buffer.from(
      canonicalJson({
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name: target, digest: { sha256: image.digest.slice('sha256:'.length) } }],
        predicateType: vsaPredicateType,
        predicate: {
          verifier: { id: `pkg:npm/redo-ts@${redoVersion()}`, version: { 'redo-ts': redoVersion() } },
          resourceUri: `${reference.host}/${reference.repository}@${image.digest}`,
          policy: { uri: rebuildPolicy },
          inputAttestations: [{ uri: `${reference.host}/${reference.repository}@${provenance.manifestDigest}`, digest: { sha256: createHash('sha256').update(provenance.statement).digest('hex') } }],
          verificationResult: 'PASSED',
          verifiedLevels: ['REDO_TS_REBUILT_IDENTICAL'],
          slsaVersion: '1.0',
          matched: { manifest: image.digest, config: manifest.config?.digest, layers: (manifest.layers ?? manifest.manifests ?? []).map((d) => d.digest), offline: true, sourceDateEpoch },
        },
      }),
    );
    const pushed = await attachStatement(client, reference.repository, { digest: image.digest, size: image.bytes.length, mediaType: image.mediaType }, vsa, key, vsaPredicateType);
    io.stdout.write(`identical: ${target} ${image.digest} rebuilt offline from its provenance\nverification summary ${pushed.manifestDigest.slice(0, 19)}…  statement ${pushed.statementBytes} B, envelope ${pushed.envelopeBytes} B\n`);
    return 0;
  } finally {
    client.close();
  }
}

/** Names the first layer whose digest differs and, inside it, the first differing member. */
async function firstLayerDifference(client: RegistryClient, repository: string, remoteBytes: Buffer, layout: ReturnType<typeof openLayoutArchive>): Promise<string> {
  const remote = JSON.parse(remoteBytes.toString('utf8')) as { layers?: { digest: string }[] };
  const localTop = layout.index.manifests[0]!;
  const local = JSON.parse(layout.readBlob(localTop.digest).toString('utf8')) as { layers?: { digest: string }[] };
  const remoteLayers = remote.layers ?? [];
  const localLayers = local.layers ?? [];
  for (let i = 0; i < Math.max(remoteLayers.length, localLayers.length); i += 1) {
    const r = remoteLayers[i];
    const l = localLayers[i];
    if (r?.digest === l?.digest) continue;
    if (r === undefined || l === undefined) return `  first difference: layer ${i + 1}: ${r === undefined ? 'only in the rebuild' : 'only in the pushed image'}\n`;
    const scratch = mkdtempSync(path.join(tmpdir(), 'redo-ts-layer-'));
    try {
      const pushedFile = path.join(scratch, 'pushed');
      const rebuiltFile = path.join(scratch, 'rebuilt');
      await client.fetchBlob(repository, r.digest, pushedFile);
      writeFileSync(rebuiltFile, layout.readBlob(l.digest));
      const difference = await compareArchives(pushedFile, rebuiltFile);
      return `  first difference: layer ${i + 1} (pushed ${r.digest}, rebuilt ${l.digest})${difference === null ? '' : `: ${describeDifference(difference)}`}\n`;
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  }
  return '  first difference: the config or manifest (every layer is identical)\n';
}
