// NAME.fragment.tar: the rootfs fragment described by the target spec NAME.spec.yaml;
// NAME@LAYER.fragment.tar: only the entries of its layer LAYER.
//
// buildFragment (lib/sources) fetches every pinned source through the content-addressed
// cache, checks it against its integrity pin, runs the spec's build steps in a scratch
// folder and writes the delivered files as a deterministic tar, with the modes and
// owners the spec (or the .deb) gives, never the builder's. The dependencies recorded
// here are the spec itself, the project files and folders it reads (`integrity: project`), the lock
// of a package list, and the fragments its build steps run on: the project's
// build-environment spec and its build-requires, assembled into the sandbox's root (or,
// for a spec with `build-environment: host`, its build-requires unpacked into $SYSROOT),
// and, for a package list of another architecture than the machine's, the build-environment
// spec whose static busybox runs its maintainer scripts; pinned sources need none, since
// their pins are in the spec's text.
//
// redo-ts: cacheable (a remote build cache may store and reuse its output: docs/registry.md)
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { BlobStore, buildEnvironmentOf, buildEnvironmentSpecName, buildFragment, digestHex, hostArchitecture, loadSpec, projectFilesOf, scriptEnvironmentOf } from 'redo-ts';
import type { RuleContext } from 'redo-ts';

export default async function (ctx: RuleContext): Promise<void> {
  // Every member's mtime (and an image's created time) is SOURCE_DATE_EPOCH: a dependency.
  ctx.ifchangeEnv('SOURCE_DATE_EPOCH');
  // NAME@LAYER.fragment.tar is the one layer LAYER of NAME.spec.yaml (see docs/debian.md).
  const [name, layer] = ctx.base.split('@') as [string, string | undefined];
  const specPath = join(ctx.dir, `${name}.spec.yaml`);
  await ctx.ifchange(relative(ctx.dir, specPath));
  const spec = await loadSpec(specPath, { root: ctx.root });
  // A project folder source: the folder (its listing: a file added, removed or renamed
  // anywhere below rebuilds) and every file in it (an edit anywhere below rebuilds).
  const projectFiles = projectFilesOf(spec).map((path) => relative(ctx.dir, resolve(ctx.root, path)));
  if (projectFiles.length > 0) await ctx.ifchange(...projectFiles);
  // A package list builds from its lock (NAME.lock.yaml): a new lock rebuilds the fragment.
  if (spec.packages !== undefined) {
    const lock = `${name}.lock.yaml`;
    if (existsSync(join(ctx.dir, lock))) await ctx.ifchange(lock);
    else await ctx.ifcreate(lock);
  }
  // The build environment: the project's build-environment spec, then build-requires,
  // built first and assembled into the sandbox's read-only root (not delivered).
  const environment = buildEnvironmentOf(spec);
  if (environment.length > 0) await ctx.ifchange(...environment.map((part) => relative(ctx.dir, part.tarPath)));
  // A package list of another architecture than the machine's: its postinsts run with the
  // static busybox of the project's build environment (docs/debian.md), built first.
  const scriptEnvironment = await scriptEnvironmentOf(spec, () => hostArchitecture(ctx.env));
  if (scriptEnvironment.length > 0) await ctx.ifchange(...scriptEnvironment.map((part) => relative(ctx.dir, part.tarPath)));
  // With host tools, build-requires are unpacked into $SYSROOT instead.
  const sysroot = spec.buildEnvironment === 'host' ? spec.buildRequires.map((name) => `${name}.fragment.tar`) : [];
  if (sysroot.length > 0) await ctx.ifchange(...sysroot);
  // Each part's digest as the image store remembers it from the rule that wrote it (same
  // device, inode, size and mtime): finding the environment does not read the tars again.
  const store = BlobStore.ofProject(ctx.root);
  const parts = environment.map((part) => ({ ...part, sha256: digestHex(store.digestOf(part.tarPath)) }));
  const scriptParts = scriptEnvironment.map((part) => ({ ...part, sha256: digestHex(store.digestOf(part.tarPath)) }));
  // The build environment's own fragment is made from its locked packages once per
  // machine: kept in the cache by content (its spec, lock and redo-ts's code), so a clean
  // build of a project whose environment was seen before copies it (hash checked).
  const result = await buildFragment(specPath, ctx.output, {
    root: ctx.root, env: ctx.env, sysroot: sysroot.map((fragment) => join(ctx.dir, fragment)), environment: parts, scriptEnvironment: scriptParts,
    ...(layer !== undefined ? { layer } : {}), onProgress: (line) => ctx.log(line), keepByContent: name === buildEnvironmentSpecName, spec,
  });
  if (result.kept?.damaged !== undefined) ctx.log(`fragment: the copy kept in the cache was damaged (${result.kept.damaged}): dropped, built anew`);
  if (result.kept !== undefined) ctx.log(`fragment: ${result.kept.how === 'taken' ? 'taken from' : 'kept in'} the cache as ${result.kept.key.slice(0, 12)}`);
  const built = result.buildEnvironment;
  if (built.kind === 'sandbox') ctx.log(`fragment: build steps ran in the sandbox over environment ${built.key.slice(0, 12)} (${built.declaredIn.join(', ')})`);
  if (built.kind === 'host') ctx.log(`fragment: NOT HERMETIC: ${built.spec} says build-environment: host, so its build steps ran with this machine's tools`);
  for (const source of result.sources) {
    ctx.log(`fragment: ${source.kind}:${source.name} ${source.version} ${source.integrity ?? '(project file)'}`);
  }
  for (const effect of result.debian?.effects ?? []) ctx.log(`fragment: reproduced ${effect}`);
  for (const script of result.debian?.scripts ?? []) {
    ctx.log(`fragment: not run: ${script.package}.${script.script}${script.reproduced.length > 0 ? ` (reproduced: ${script.reproduced.join(', ')})` : ''}`);
  }
  ctx.log(`fragment: ${result.entryCount} members, ${result.diffId}`);
  // Hashed as it was written: an image that takes this layer stores it without reading it to hash it.
  BlobStore.ofProject(ctx.root).rememberWritten(ctx.output, ctx.targetPath, result.diffId);
  ctx.outputSha256(digestHex(result.diffId));
}
