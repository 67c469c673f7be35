// NAME.tar: a `docker load`-able image archive described by NAME.yaml beside it.
//
// The description lists the image's layers (each a tar target, usually a rootfs
// fragment built from a spec in targets/) and its config; see lib/image/description.ts
// for the format. Every layer is brought up to date first, so a change to one spec
// rebuilds that fragment and this archive, and nothing else. The OCI layout of the
// same image (NAME.oci.tar) is built alongside, so one `redo-ts NAME.tar` gives both.
// Every layer passes the one tar check (lib/image/tar-check.ts) and a path delivered
// by two layers is an error naming both, unless the description says
// `allowOverlap: true`; NAME.oci.tar makes the same checks, so a refused image builds
// neither output. With `audit: true` the image is audited first (see `redo-ts audit`)
// and any finding `auditAllow` does not accept fails the build. An ELF file needing a
// library no layer provides is an error naming the binary, the soname and its layer,
// unless it says `allowMissingLibraries: true` (or the image has a base, whose layers
// are not read).
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { RedoError, auditInventory, checkElfClosure, collectInventory, formatFindings, imageForPlatform, loadImageDescription, loadSpec, resolveBaseInputs, writeDockerArchive } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime (and an image's created time) is SOURCE_DATE_EPOCH: a dependency.
  ctx.ifchangeEnv('SOURCE_DATE_EPOCH');
  const descriptionName = `${ctx.base}.yaml`;
  if (!existsSync(join(ctx.dir, descriptionName))) {
    await ctx.ifcreate(descriptionName);
    throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${relative(ctx.root, ctx.targetPath)}": no such file, and no image description "${relative(ctx.root, join(ctx.dir, descriptionName))}" to build it from`, {
      hint: `if a list names it, check the name there; to build an image, write ${descriptionName} (see docs/image.md), or name a rule ${ctx.target}.do`,
    });
  }
  await ctx.ifchange(descriptionName);
  const loaded = await loadImageDescription(join(ctx.dir, descriptionName), ctx.root);
  // The docker archive format has no platforms (no manifest list): a multi-arch
  // description's archive holds its first platform; NAME.oci.tar holds them all.
  const first = loaded.platforms?.[0];
  const description = first === undefined ? loaded : { ...loaded, ...imageForPlatform(loaded, first) };
  await ctx.ifchange(...description.layers, `${ctx.base}.oci.tar`);
  if (description.shouldAudit) {
    const inventory = await collectInventory(relative(ctx.root, ctx.targetPath), join(ctx.dir, descriptionName), { root: ctx.root, env: ctx.env, shouldSkipChecksums: true });
    const audit = auditInventory(inventory, description.auditAllow);
    if (audit.findings.length > 0) {
      throw new RedoError('ERR_AUDIT_FINDINGS', `redo: "${relative(ctx.root, ctx.targetPath)}": the audit found ${audit.findings.length} problem${audit.findings.length === 1 ? '' : 's'}`, {
        details: formatFindings(audit.findings),
        hint: `remove them from the specs, or accept them in ${relative(ctx.root, join(ctx.dir, descriptionName))} with auditAllow: [KIND:/path]`,
      });
    }
    ctx.log(`audit: no findings${audit.allowed.length > 0 ? ` (${audit.allowed.length} allowed)` : ''}`);
  }
  // A layer built from a spec brings the specs it `requires` (run-time dependencies): their
  // fragments must be layers of this image too.
  // NAME@LAYER.fragment.tar (one layer of a spec) counts as NAME's fragment.
  const specOf = (layer: string): string => join(ctx.dir, layer.replace(/(@[^/]*)?\.fragment\.tar$/, '.spec.yaml'));
  const layerSpecs = new Set(description.layers.filter((layer) => layer.endsWith('.fragment.tar')).map(specOf));
  for (const layer of description.layers) {
    const specPath = specOf(layer);
    if (!layer.endsWith('.fragment.tar') || !existsSync(specPath)) continue;
    const spec = await loadSpec(specPath, { root: ctx.root });
    // A per-architecture spec NAME-ARCH (layer NAME-${arch}.fragment.tar) meets `requires: [NAME]`.
    const architecture = description.config.architecture;
    const absent = spec.requires.filter((name) => !layerSpecs.has(join(dirname(specPath), `${name}.spec.yaml`)) && !layerSpecs.has(join(dirname(specPath), `${name}-${architecture}.spec.yaml`)));
    if (absent.length > 0) {
      throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${relative(ctx.root, ctx.targetPath)}": layer "${layer}" requires specs that are not layers of the image`, {
        details: absent.map((name) => `${spec.relativePath} requires ${name}: add ${relative(ctx.dir, join(dirname(specPath), `${name}.fragment.tar`))} to ${descriptionName}`),
        hint: 'list every required spec\'s fragment under `layers`, or drop it from `requires`',
      });
    }
  }
  // Every library an ELF file needs must be in the image (docs/image.md), unless allowed.
  if (!description.allowMissingLibraries && description.base === undefined) {
    checkElfClosure(description.layers.map((layer) => ({ label: layer, path: join(ctx.dir, layer) })), `"${relative(ctx.root, ctx.targetPath)}"`);
  }
  const base = await resolveBaseInputs(description, relative(ctx.root, description.path), ctx.env);
  const result = await writeDockerArchive(
    {
      layers: description.layers.map((layer) => join(ctx.dir, layer)),
      layerLabels: description.layers,
      isOverlapAllowed: description.allowOverlap,
      ...(base.baseLayers === undefined ? {} : { baseLayers: base.baseLayers }),
      config: base.config,
      repoTags: description.tags,
      gzip: description.gzip,
    },
    ctx.output,
  );
  ctx.log(`image: config ${result.configDigest}`);
  const baseCount = base.baseLayers?.length ?? 0;
  for (let i = 0; i < baseCount; i += 1) ctx.log(`image: base layer ${i + 1} ${result.diffIds[i]}`);
  description.layers.forEach((layer, i) => ctx.log(`image: layer ${layer} ${result.diffIds[baseCount + i]}`));
}
