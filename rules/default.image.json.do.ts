// NAME.image.json: the image described by NAME.yaml, assembled once and checked once.
//
// Every layer is brought up to date and stored by digest in the project's image store
// (.redo/store, lib/image/blob-store.ts); then, in this order, every check the image
// has: the tar check of each layer (lib/image/tar-check.ts), no path delivered by two
// layers (unless `allowOverlap: true`), the audit (with `audit: true`; findings
// `auditAllow` does not accept fail the build), the specs each layer `requires`, and
// the ELF closure (unless `allowMissingLibraries: true` or the image has a base, whose
// layers are not read), for every platform. Only an image that passes them all gets its
// configs, manifests, SBOM artifacts (unless `sbom: false`; one pair per platform, each
// naming its platform's manifest as subject) and index
// stored, and this record written: the digests of everything, no bytes. NAME.tar,
// NAME.oci.tar and `redo-ts push` are views of the record and the store
// (docs/image.md), so an image that fails a check has no output and cannot be pushed.
//
// The record holds the bytes of every blob but the layers (configs, manifests, SBOMs), so
// a record from a remote build cache fills the store again from itself and the layer
// targets (ensureImageStored): checked where it was built, by whoever the cache trusts.
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import {
  BlobStore,
  RedoError,
  assembleImage,
  auditInventory,
  canonicalJson,
  checkPlatformVersions,
  collectInventory,
  cyclonedxDocument,
  digestBytes,
  digestHex,
  entriesFromFacts,
  entriesToFacts,
  formatFindings,
  imageForPlatform,
  loadImageDescription,
  loadSpec,
  mtimeFromEnvironment,
  recordHeadFactKind,
  resolveBaseInputs,
  spdxDocument,
} from 'redo-ts';
import type { ArtifactForImage, ImageInput, Inventory, RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime (and an image's created time) is SOURCE_DATE_EPOCH: a dependency.
  ctx.ifchangeEnv('SOURCE_DATE_EPOCH');
  const name = ctx.base.replace(/\.image$/, '');
  const descriptionName = `${name}.yaml`;
  const descriptionPath = join(ctx.dir, descriptionName);
  const shown = (path: string): string => relative(ctx.root, path);
  if (!existsSync(descriptionPath)) {
    await ctx.ifcreate(descriptionName);
    throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${shown(ctx.targetPath)}": no such file, and no image description "${shown(descriptionPath)}" to build it from`, {
      hint: `to build an image, write ${descriptionName} (see docs/image.md), or name a rule ${ctx.target}.do`,
    });
  }
  await ctx.ifchange(descriptionName);
  const description = await loadImageDescription(descriptionPath, ctx.root);
  // `platforms:` gives one image per platform ("${arch}" in layer paths replaced), stored
  // under an OCI image index; otherwise the layout holds the one image directly.
  const platforms = (description.platforms ?? [undefined]).map((platform) =>
    platform === undefined ? { layers: description.layers, config: description.config } : imageForPlatform(description, platform),
  );
  await ctx.ifchange(...new Set(platforms.flatMap((image) => image.layers)));
  // The platforms' Debian packages must be the same versions, unless the description allows a name.
  if (description.platforms !== undefined) {
    await checkPlatformVersions(description.platforms.map((platform, i) => ({ architecture: platform.architecture, layers: platforms[i]!.layers })), ctx.dir, ctx.root,
      description.allowVersionDifferences, `"${shown(join(ctx.dir, `${name}.tar`))}"`);
  }
  const images: ImageInput[] = [];
  const store = BlobStore.ofProject(ctx.root);
  for (const image of platforms) {
    // A pinned base (`base: HOST/REPO@sha256:…`) is fetched once into the source cache and
    // checked by digest as it is copied into the store; its layers go below ours, byte for
    // byte, so a push can skip them.
    const base = await resolveBaseInputs({ ...description, config: image.config }, shown(description.path), ctx.env, store);
    images.push({
      layers: image.layers.map((layer) => join(ctx.dir, layer)),
      layerLabels: image.layers,
      isOverlapAllowed: description.allowOverlap,
      config: base.config,
      compression: description.compression,
      ...(base.baseLayers === undefined ? {} : { baseLayers: base.baseLayers }),
      ...(base.annotations === undefined ? {} : { annotations: base.annotations }),
    });
  }
  // Errors name the image as NAME.tar, the output people build.
  const subject = `"${shown(join(ctx.dir, `${name}.tar`))}"`;
  // The inventory (what the audit and the SBOMs read) is taken once per platform image,
  // with per-file checksums when an SBOM needs them: every platform is audited and gets
  // its own SBOMs, whose subject is its own manifest.
  const isSbomMade = description.hasSbom;
  const isMultiPlatform = description.platforms !== undefined;
  const inventories = new Map<number, Promise<Inventory>>();
  const inventoryOf = (platformIndex: number): Promise<Inventory> => {
    let inventory = inventories.get(platformIndex);
    if (inventory !== undefined) return inventory;
    inventory = collectInventory(shown(join(ctx.dir, `${name}.oci.tar`)), descriptionPath, {
      root: ctx.root,
      env: ctx.env,
      platformIndex,
      // Layers are in the store by now: their digests and per-file sums are facts kept
      // beside their blobs, so a layer that did not change is not read for them again.
      layerFacts: {
        diffIdOf: (path) => store.putFile(path).digest,
        checksumsOf: (diffId, compute) => store.facts(diffId, 'file-sums', compute),
        entriesOf: (diffId, path, compute) => entriesFromFacts(store.facts(diffId, 'entries', () => entriesToFacts(compute())), path),
      },
      ...(isSbomMade ? {} : { shouldSkipChecksums: true }),
    });
    inventories.set(platformIndex, inventory);
    return inventory;
  };
  // `linux/arm64 `: how a platform is named in messages of a multi-platform image.
  const platformName = (i: number): string => {
    const platform = description.platforms?.[i];
    return platform === undefined ? '' : `${platform.os}/${platform.architecture}${platform.variant === undefined ? '' : `/${platform.variant}`}`;
  };
  const checks = async (): Promise<void> => {
    if (description.shouldAudit) {
      for (const i of platforms.keys()) {
        const audit = auditInventory(await inventoryOf(i), description.auditAllow);
        const on = isMultiPlatform ? ` (${platformName(i)})` : '';
        if (audit.findings.length > 0) {
          throw new RedoError('ERR_AUDIT_FINDINGS', `redo: ${subject}${on}: the audit found ${audit.findings.length} problem${audit.findings.length === 1 ? '' : 's'}`, {
            details: formatFindings(audit.findings),
            hint: `remove them from the specs, or accept them in ${shown(descriptionPath)} with auditAllow: [KIND:/path]`,
          });
        }
        ctx.log(`audit${on}: no findings${audit.allowed.length > 0 ? ` (${audit.allowed.length} allowed)` : ''}`);
      }
    }
    for (const image of platforms) await checkRequires(ctx, image.layers, image.config.architecture, descriptionName, subject);
  };
  const artifacts = async (_subject: unknown, platformIndex: number): Promise<ArtifactForImage[]> => {
    const taken = await inventoryOf(platformIndex);
    // A spec that delivered files is already a dependency of its fragment; depending on
    // it here too would rebuild the image after an edit that leaves the fragment's
    // bytes unchanged, defeating early cutoff. Specs only required are read here alone.
    const delivering = new Set(taken.files.flatMap((file) => ('spec' in file.origin ? [file.origin.spec] : [])));
    const readOnlyHere = taken.specs.filter((spec) => !delivering.has(spec.path));
    if (readOnlyHere.length > 0) await ctx.ifchange(...readOnlyHere.map((spec) => relative(ctx.dir, join(ctx.root, spec.path))));
    const options = { createdSeconds: mtimeFromEnvironment(ctx.env) };
    // Ref names are unique in the layout: a platform's SBOMs carry its name (linux-arm64).
    const refName = isMultiPlatform ? `${description.refName}.${platformName(platformIndex).replaceAll('/', '-')}` : description.refName;
    return [
      { refName: `${refName}.sbom.spdx`, artifactType: 'application/spdx+json', blob: Buffer.from(spdxDocument(taken, options)), blobMediaType: 'application/spdx+json' },
      { refName: `${refName}.sbom.cyclonedx`, artifactType: 'application/vnd.cyclonedx+json', blob: Buffer.from(cyclonedxDocument(taken, options)), blobMediaType: 'application/vnd.cyclonedx+json' },
    ];
  };
  const record = await assembleImage(
    {
      images,
      isIndex: description.platforms !== undefined,
      refName: description.refName,
      repoTags: description.tags,
      shouldCheckElfClosure: !description.allowMissingLibraries && description.base === undefined,
      subject,
      checks,
      ...(isSbomMade ? { artifacts } : {}),
    },
    store,
  );
  const recordBytes = Buffer.from(`${canonicalJson(record)}\n`, 'utf8');
  writeFileSync(ctx.output, recordBytes);
  const recordDigest = digestBytes(recordBytes);
  // Hashed in memory: the engine does not read the record back to stamp it.
  ctx.outputSha256(digestHex(recordDigest));
  // The views read the record without its inline bytes (most of it the SBOMs) from the
  // store, found by the digest remembered for this file: they do not read it at all.
  store.rememberWritten(ctx.output, ctx.targetPath, recordDigest);
  store.facts(recordDigest, recordHeadFactKind, () => ({ ...record, inline: {} }));
  for (const image of record.images) {
    const prefix = record.images.length > 1 ? `${image.platform} ` : '';
    ctx.log(`image: ${prefix}manifest ${image.manifest.digest} config ${image.config.digest}`);
    for (const layer of image.layers) ctx.log(`image: ${prefix}layer ${layer.label} ${layer.diffId}`);
  }
  if (record.images.length > 1) ctx.log(`image: index ${record.top.digest} ref ${record.refName}`);
}

/**
 * A layer built from a spec brings the specs it `requires` (run-time dependencies): their
 * fragments must be layers of this image too. NAME@LAYER.fragment.tar (one layer of a
 * spec) counts as NAME's fragment, and so does NAME-ARCH's for a platform of architecture
 * ARCH. `subject` names the image in the error.
 */
async function checkRequires(ctx: RuleContext, layers: readonly string[], architecture: string, descriptionName: string, subject: string): Promise<void> {
  const specOf = (layer: string): string => join(ctx.dir, layer.replace(/(@[^/]*)?\.fragment\.tar$/, '.spec.yaml'));
  const layerSpecs = new Set(layers.filter((layer) => layer.endsWith('.fragment.tar')).map(specOf));
  for (const layer of layers) {
    const specPath = specOf(layer);
    if (!layer.endsWith('.fragment.tar') || !existsSync(specPath)) continue;
    const spec = await loadSpec(specPath, { root: ctx.root });
    // A per-architecture spec NAME-ARCH (layer NAME-${arch}.fragment.tar) meets `requires: [NAME]`.
    const absent = spec.requires.filter((required) => !layerSpecs.has(join(dirname(specPath), `${required}.spec.yaml`)) && !layerSpecs.has(join(dirname(specPath), `${required}-${architecture}.spec.yaml`)));
    if (absent.length > 0) {
      throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: ${subject}: layer "${layer}" requires specs that are not layers of the image`, {
        details: absent.map((required) => `${spec.relativePath} requires ${required}: add ${relative(ctx.dir, join(dirname(specPath), `${required}.fragment.tar`))} to ${descriptionName}`),
        hint: "list every required spec's fragment under `layers`, or drop it from `requires`",
      });
    }
  }
}
