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
import { join, relative } from 'node:path';
import { RedoError, checkElfClosure, checkLayersDisjoint, loadImageDescription, writeDockerArchive } from 'redo-ts';
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
