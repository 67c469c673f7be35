// NAME.tar: a `docker load`-able image archive described by NAME.yaml beside it.
//
// The description lists the image's layers (each a tar target, usually a rootfs
// fragment built from a spec in targets/) and its config; see lib/image/description.ts
// for the format. Every layer is brought up to date first, so a change to one spec
// rebuilds that fragment and this archive, and nothing else. The OCI layout of the
// same image (NAME.oci.tar) is built alongside, so one `redo-ts NAME.tar` gives both.
// A path delivered by two layers is an error naming both, unless the description
// says `allowOverlap: true`.
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { RedoError, checkLayersDisjoint, imageForPlatform, loadImageDescription, resolveBaseInputs, writeDockerArchive } from 'redo-ts';
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
  const loaded = await loadImageDescription(join(ctx.dir, descriptionName), ctx.root);
  // The docker archive format has no platforms (no manifest list): a multi-arch
  // description's archive holds its first platform; NAME.oci.tar holds them all.
  const first = loaded.platforms?.[0];
  const description = first === undefined ? loaded : { ...loaded, ...imageForPlatform(loaded, first) };
  await ctx.ifchange(...description.layers, `${ctx.base}.oci.tar`);
  if (!description.allowOverlap) {
    checkLayersDisjoint(description.layers.map((layer) => ({ label: layer, path: join(ctx.dir, layer) })));
  }
  const base = await resolveBaseInputs(description, relative(ctx.root, description.path), ctx.env);
  const result = await writeDockerArchive(
    {
      layers: description.layers.map((layer) => join(ctx.dir, layer)),
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
