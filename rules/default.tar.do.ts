// NAME.tar: a `docker load`-able image archive described by NAME.yaml beside it.
//
// The description lists the image's layers (each a tar target, usually a rootfs
// fragment built from a spec in targets/) and its config; see lib/image/description.ts
// for the format. Every layer is brought up to date first, so a change to one spec
// rebuilds that fragment and this archive, and nothing else. The OCI layout of the
// same image (NAME.oci.tar) is built alongside, so one `redo-ts NAME.tar` gives both.
// A path delivered by two layers is an error naming both, unless the description
// says `allowOverlap: true`; an ELF file needing a library no layer provides is an error
// naming the binary, the soname and its layer, unless it says `allowMissingLibraries: true`.
import { existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { RedoError, checkElfClosure, checkLayersDisjoint, loadImageDescription, loadSpec, writeDockerArchive } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  const descriptionName = `${ctx.base}.yaml`;
  if (!existsSync(join(ctx.dir, descriptionName))) {
    await ctx.ifcreate(descriptionName);
    throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${relative(ctx.root, ctx.targetPath)}": no image description "${relative(ctx.root, join(ctx.dir, descriptionName))}"`, {
      hint: `write ${descriptionName} listing the image's layers and config (see docs/image.md), or name a rule ${ctx.target}.do`,
    });
  }
  await ctx.ifchange(descriptionName);
  const description = await loadImageDescription(join(ctx.dir, descriptionName), ctx.root);
  await ctx.ifchange(...description.layers, `${ctx.base}.oci.tar`);
  if (!description.allowOverlap) {
    checkLayersDisjoint(description.layers.map((layer) => ({ label: layer, path: join(ctx.dir, layer) })));
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
    const absent = spec.requires.filter((name) => !layerSpecs.has(join(dirname(specPath), `${name}.spec.yaml`)));
    if (absent.length > 0) {
      throw new RedoError('ERR_IMAGE_DESCRIPTION', `redo: "${relative(ctx.root, ctx.targetPath)}": layer "${layer}" requires specs that are not layers of the image`, {
        details: absent.map((name) => `${spec.relativePath} requires ${name}: add ${relative(ctx.dir, join(dirname(specPath), `${name}.fragment.tar`))} to ${descriptionName}`),
        hint: 'list every required spec\'s fragment under `layers`, or drop it from `requires`',
      });
    }
  }
  // Every library an ELF file needs must be in the image (docs/image.md), unless allowed.
  if (!description.allowMissingLibraries) {
    checkElfClosure(description.layers.map((layer) => ({ label: layer, path: join(ctx.dir, layer) })), `"${relative(ctx.root, ctx.targetPath)}"`);
  }
  const result = await writeDockerArchive(
    {
      layers: description.layers.map((layer) => join(ctx.dir, layer)),
      config: description.config,
      repoTags: description.tags,
      gzip: description.gzip,
    },
    ctx.output,
  );
  ctx.log(`image: config ${result.configDigest}`);
  description.layers.forEach((layer, i) => ctx.log(`image: layer ${layer} ${result.diffIds[i]}`));
}
