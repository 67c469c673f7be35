/** The inventory of an image: every file of every layer with its checksums, and the layer, spec, pinned source or package that delivered it. */

import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { RedoError } from '../errors.js';
import { digestBytes, digestFile, digestHex, type Sha256Digest } from '../image/digest.js';
import { imageConfigJson } from '../image/image-config.js';
import { imageForPlatform, loadImageDescription } from '../image/description.js';
import { entriesOfTar, pathText, type TarEntry, type TarEntryType } from '../image/tar.js';
import type { PinnedSource } from '../sources/fragment.js';
import { integrityOfBytes, type Integrity } from '../sources/integrity.js';
import { buildEnvironmentSpecOf, collectSpecs } from '../sources/provenance.js';
import { integrityOfFolder, isFolder } from '../sources/folder.js';
import { loadSpec, specSuffix, type Spec } from '../sources/spec.js';
import type { LicenceFinding } from './licence.js';
import { debianLockProvider } from './lock-packages.js';
import { appPackageProvider } from './app-packages.js';
import { debSourceProvider, type DebPackage, type PackageProvider } from './packages.js';

/** Where one file of the image came from. */
export type FileOrigin =
  /** Installed from a Debian package a spec names (key into Inventory.packages). */
  | { kind: 'package'; package: string; spec: string }
  /** Built or placed by a spec's build steps (`files:`), from its pinned sources. */
  | { kind: 'spec'; spec: string }
  /** Copied from a project folder named in a layer list (`rootfs/`). */
  | { kind: 'folder'; folder: string; projectPath: string }
  /** From a tar target redo-ts has no provenance for (a custom rule's output). */
  | { kind: 'target'; target: string };

/** One member of one layer. */
export interface InventoryFile {
  /** Absolute image path, `/usr/bin/greet`. */
  path: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  sizeBytes: number;
  /** Symlink target as stored, or the hardlink's target image path. */
  linkTarget?: string;
  /** Content checksums of regular files and hardlinks (lower-case hex). */
  sha256Hex?: string;
  sha1Hex?: string;
  /** Index into Inventory.layers. */
  layer: number;
  origin: FileOrigin;
  /** Where a regular file's bytes lie: the layer tar and the offset (for the audit's content checks). */
  content?: { path: string; offsetBytes: number };
}

/** One layer of the image, bottom first. */
export interface InventoryLayer {
  /** The layer's tar target, relative to the project root. */
  target: string;
  diffId: Sha256Digest;
}

/** A Debian, npm or PyPI package in the image, or used to build it (`isDelivered: false`). */
export interface InventoryPackage {
  /** `deb:NAME=VERSION?arch=A`, `npm:NAME@VERSION`, `pypi:NAME==VERSION`: unique within an inventory. */
  key: string;
  /** Set for an npm or PyPI package of a spec's lock file; Debian's otherwise. */
  ecosystem?: 'npm' | 'pypi';
  name: string;
  version: string;
  architecture: string;
  purl: string;
  /** The url as the spec writes it. */
  url: string;
  integrity: string | undefined;
  /** Specs naming it (relative paths). */
  specs: string[];
  isDelivered: boolean;
  licence: LicenceFinding;
  /** Keys of packages of this inventory that it depends on (Depends and Pre-Depends, first alternative present). */
  dependsOn: string[];
  maintainer?: string;
  homepage?: string;
  summary?: string;
  sourcePackage?: string;
}

/** A spec that delivered files, or that one of them requires. */
export interface InventorySpec {
  /** Relative path of the spec file: its key. */
  path: string;
  name: string;
  version: string;
  description?: string;
  /** Keys (paths) of the specs it requires at run time and at build time. */
  requires: string[];
  buildRequires: string[];
  /** Its sources and patches other than delivered packages: what its built files come from. */
  sources: PinnedSource[];
  /** Keys of the packages it names. */
  packages: string[];
  /**
   * Where its build steps run: `sandbox` (hermetic: locked packages only), `host` (the
   * builder's tools, `build-environment: host`: not hermetic), `none` (no build steps).
   */
  buildEnvironment: 'sandbox' | 'host' | 'none';
}

/** Paths of the specs of `inventory` whose build steps use the builder's own tools: the image is not hermetic when any does. */
export function nonHermeticSpecs(inventory: Pick<Inventory, 'specs'>): string[] {
  return inventory.specs.filter((spec) => spec.buildEnvironment === 'host').map((spec) => spec.path);
}

/** Everything known about one image target. */
export interface Inventory {
  /** The image target (`image.tar`) and description, relative to the project root. */
  target: string;
  description: string;
  /** First tag, else the target's name. */
  name: string;
  tags: string[];
  architecture: string;
  os: string;
  /** The image config's digest (the image ID), same for the docker archive and the OCI layout. */
  configDigest: Sha256Digest;
  /** `debian-N` when the packages say so (os-release, or `+debN` versions), else undefined. */
  distro: string | undefined;
  layers: InventoryLayer[];
  specs: InventorySpec[];
  packages: InventoryPackage[];
  files: InventoryFile[];
}

/** Options for collectInventory. */
export interface InventoryOptions {
  /** Project root. */
  root: string;
  env?: NodeJS.ProcessEnv;
  /** Where package metadata comes from; default defaultPackageProvider (pinned `deb:` sources and package-list locks). */
  packages?: PackageProvider;
  /** Skip content checksums (queries that need only origins). */
  shouldSkipChecksums?: boolean;
  /** Of a multi-platform description, which platform's image (index into `platforms:`); default 0, the one NAME.tar holds. */
  platformIndex?: number;
  /**
   * Facts about layers kept elsewhere (the image store, lib/image/blob-store.ts), so a
   * layer already known is not read again: its diffID, and the sha256 and sha1 of each of
   * its regular files (by latin1 member path), which `compute` gives the first time.
   */
  layerFacts?: {
    diffIdOf(layerPath: string): Sha256Digest;
    checksumsOf(diffId: Sha256Digest, compute: () => Record<string, [string, string]>): Record<string, [string, string]>;
    /** The layer's entries (as entriesOfTar gives them for `layerPath`), which `compute` gives the first time. */
    entriesOf?(diffId: Sha256Digest, layerPath: string, compute: () => TarEntry[]): TarEntry[];
  };
}

/**
 * The packages of a spec from both places a spec names them: its pinned `deb:` sources
 * (debSourceProvider) and, for a spec with a `packages` list, its lock and the dpkg
 * database of its fragment (debianLockProvider). Same options and errors as those.
 */
export function defaultPackageProvider(options: { env?: NodeJS.ProcessEnv; cacheDir?: string; isOffline?: boolean } = {}): PackageProvider {
  const sources = debSourceProvider(options);
  const locks = debianLockProvider(options);
  const apps = appPackageProvider(options);
  return {
    async packagesOf(spec, fragments) {
      return [...(await sources.packagesOf(spec, fragments)), ...(await locks.packagesOf(spec, fragments)), ...(await apps.packagesOf(spec, fragments))];
    },
  };
}

/** The image description of an image target: `NAME.yaml` for `NAME.tar` and `NAME.oci.tar`. */
export function descriptionOfTarget(targetPath: string): string | undefined {
  const match = /^(.*?)(\.oci)?\.tar$/.exec(targetPath);
  if (match === null) return undefined;
  return `${match[1]}.yaml`;
}

/**
 * Builds the inventory of the image described by `descriptionPath` (absolute) from
 * its layer targets as they are on disk (the caller brings them up to date first):
 * each layer tar is read member by member; a layer `X.fragment.tar` is attributed to
 * `X.spec.yaml` beside it, a layer `X.layer.tar` to the inputs of its list `X.layer`
 * (fragment tars and folders); within a spec, a path some delivered `deb:` source
 * installs (after include/exclude), or that a package-list package's `info/PKG.list`
 * names, belongs to that package, anything else to the spec's build. Packages of specs
 * whose fragments are no layer (reached only through `requires`/`build-requires`) are
 * listed as not delivered. The result is sorted (layers bottom first, files by layer then path bytes,
 * packages and specs by key), so the same image gives the same inventory. Of a
 * multi-platform description it is the image of platform `options.platformIndex`
 * (default the first, what NAME.tar holds).
 * Throws ERR_IMAGE_DESCRIPTION, ERR_NOT_AN_IMAGE when a layer target is missing,
 * ERR_SPEC_*, and ERR_SOURCE_UNREACHABLE when a .deb is neither cached nor fetchable.
 */
export async function collectInventory(target: string, descriptionPath: string, options: InventoryOptions): Promise<Inventory> {
  const root = options.root;
  const loaded = await loadImageDescription(descriptionPath, root);
  // A multi-platform description ("${arch}" in its layer paths): the image of the
  // platform asked for, by default the first, the one NAME.tar holds.
  const platform = loaded.platforms?.[options.platformIndex ?? 0];
  const description = platform === undefined ? loaded : { ...loaded, ...imageForPlatform(loaded, platform) };
  const folder = dirname(descriptionPath);
  const provider = options.packages ?? defaultPackageProvider(options.env !== undefined ? { env: options.env } : {});
  const specsByPath = new Map<string, Spec>();
  const packagesByKey = new Map<string, InventoryPackage>();
  const debsOfSpec = new Map<string, DebPackage[]>();
  // Specs whose fragments are layers (or inputs of layer lists): only their packages ship.
  const deliveringSpecs = new Set<string>();

  // Each spec's fragment tars among the layers (and layer-list inputs), for the providers.
  const fragmentsOfSpec = new Map<string, string[]>();
  for (const layer of description.layers) {
    for (const tar of fragmentTarsOf(resolve(folder, layer))) {
      const specPath = specOfFragment(tar)!;
      fragmentsOfSpec.set(specPath, [...(fragmentsOfSpec.get(specPath) ?? []), tar]);
    }
  }

  const useSpec = async (specPath: string, isLayer = false): Promise<{ spec: Spec; debs: DebPackage[] }> => {
    const key = relative(root, specPath);
    if (isLayer) deliveringSpecs.add(key);
    let spec = specsByPath.get(key);
    if (spec === undefined) {
      spec = await loadSpec(specPath, { root });
      specsByPath.set(key, spec);
      debsOfSpec.set(key, await provider.packagesOf(spec, fragmentsOfSpec.get(resolve(specPath)) ?? []));
    }
    return { spec, debs: debsOfSpec.get(key)! };
  };

  const layers: InventoryLayer[] = [];
  const files: InventoryFile[] = [];
  for (const [index, layer] of description.layers.entries()) {
    const layerPath = resolve(folder, layer);
    const layerTarget = relative(root, layerPath);
    if (!existsSync(layerPath)) {
      throw new RedoError('ERR_NOT_AN_IMAGE', `redo: "${target}": layer "${layerTarget}" is not built`, {
        hint: `build the image first: redo-ts ${target}`,
      });
    }
    const diffId = options.layerFacts?.diffIdOf(layerPath) ?? digestFile(layerPath).digest;
    layers.push({ target: layerTarget, diffId });
    const originOf = await originsOfTar(layerPath, root, useSpec);
    const entries = options.layerFacts?.entriesOf?.(diffId, layerPath, () => entriesOfTar(layerPath)) ?? entriesOfTar(layerPath);
    const computeSums = (): Record<string, [string, string]> =>
      Object.fromEntries(entries.filter((entry) => entry.type === 'file').map((entry) => {
        const sums = checksumsOf(entry);
        return [entry.path.toString('latin1'), [sums.sha256Hex, sums.sha1Hex]];
      }));
    const sums = options.shouldSkipChecksums === true ? undefined : options.layerFacts !== undefined ? options.layerFacts.checksumsOf(diffId, computeSums) : undefined;
    const byPath = new Map<string, InventoryFile>();
    for (const entry of entries) {
      const key = entry.path.toString('latin1');
      const file: InventoryFile = {
        path: `/${pathText(entry.path)}`,
        type: entry.type,
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        sizeBytes: entry.sizeBytes,
        layer: index,
        origin: originOf(key) ?? { kind: 'target', target: layerTarget },
      };
      if (entry.linkTarget !== undefined) file.linkTarget = entry.type === 'hardlink' ? `/${pathText(entry.linkTarget)}` : pathText(entry.linkTarget);
      if (entry.type === 'file' && entry.content?.kind === 'path') file.content = { path: layerPath, offsetBytes: entry.content.offsetBytes ?? 0 };
      if (entry.type === 'file' && options.shouldSkipChecksums !== true) {
        const known = sums?.[key];
        Object.assign(file, known !== undefined ? { sha256Hex: known[0], sha1Hex: known[1] } : checksumsOf(entry));
      }
      byPath.set(key, file);
      files.push(file);
    }
    for (const entry of entries) {
      if (entry.type !== 'hardlink') continue;
      const file = byPath.get(entry.path.toString('latin1'))!;
      const linked = byPath.get(entry.linkTarget!.toString('latin1'));
      if (linked?.sha256Hex !== undefined) {
        file.sha256Hex = linked.sha256Hex;
        file.sha1Hex = linked.sha1Hex!;
        file.sizeBytes = linked.sizeBytes;
      }
    }
  }

  // Specs the delivering specs require belong to the picture too (their packages are
  // build inputs or run-time dependencies).
  const reached = await collectSpecs([...specsByPath.values()].map((spec) => spec.path), { root, architecture: description.config.architecture ?? 'amd64' });
  for (const item of reached) await useSpec(item.spec.path);

  const distro = distroOf([...debsOfSpec.values()].flat());
  for (const [specKey, debs] of debsOfSpec) {
    for (const deb of debs) {
      const key = packageKey(deb);
      const known = packagesByKey.get(key);
      const isDelivered = deb.isDelivered && deliveringSpecs.has(specKey);
      if (known !== undefined) {
        if (!known.specs.includes(specKey)) known.specs.push(specKey);
        known.isDelivered ||= isDelivered;
        continue;
      }
      const item: InventoryPackage = {
        key,
        name: deb.name,
        version: deb.version,
        architecture: deb.architecture,
        purl: deb.purl ?? purlOf(deb, distro),
        url: deb.url,
        integrity: deb.integrity,
        specs: [specKey],
        isDelivered,
        licence: deb.licence,
        dependsOn: [],
      };
      if (deb.ecosystem !== undefined) item.ecosystem = deb.ecosystem;
      const fields = { maintainer: 'maintainer', homepage: 'homepage', summary: 'description', sourcePackage: 'source' } as const;
      for (const [name, field] of Object.entries(fields)) {
        const value = deb.control.get(field)?.split('\n')[0]?.trim();
        if (value !== undefined && value !== '') item[name as keyof typeof fields] = value;
      }
      packagesByKey.set(key, item);
    }
  }
  const deliveredByName = new Map<string, string>();
  for (const item of packagesByKey.values()) if (item.isDelivered) deliveredByName.set(item.name, item.key);
  for (const debs of debsOfSpec.values()) {
    // A dependency is the package of that name the same spec names (its lock's closure,
    // delivered or build-only alike), else one delivered into the image.
    const ownByName = new Map(debs.map((deb) => [deb.name, packageKey(deb)]));
    for (const deb of debs) {
      const item = packagesByKey.get(packageKey(deb))!;
      const relations = [deb.control.get('pre-depends'), deb.control.get('depends')].filter((v): v is string => v !== undefined).join(',');
      for (const group of relations.split(',')) {
        if (group.trim() === '') continue;
        const names = group.split('|').map((alternative) => alternative.trim().split(/[\s(:]/)[0]!);
        const present = names.map((name) => ownByName.get(name) ?? deliveredByName.get(name)).find((key) => key !== undefined);
        if (present !== undefined && present !== item.key && !item.dependsOn.includes(present)) item.dependsOn.push(present);
      }
    }
    // A lock's pulled-by names the packages whose dependencies (a virtual package's, too) pulled this one in.
    for (const deb of debs) {
      for (const name of deb.pulledBy ?? []) {
        const by = debs.find((other) => other.name === name);
        if (by === undefined) continue;
        const dependent = packagesByKey.get(packageKey(by))!;
        const key = packageKey(deb);
        if (key !== dependent.key && !dependent.dependsOn.includes(key)) dependent.dependsOn.push(key);
      }
    }
  }
  for (const item of packagesByKey.values()) item.dependsOn.sort();

  const specs: InventorySpec[] = [...specsByPath.entries()].map(([key, spec]) => {
    const inputs: PinnedSource[] = [
      ...spec.sources.filter((source) => !(source.kind === 'deb' && source.isDelivered)).map((source) => ({ source, role: 'source' as const })),
      ...spec.patches.map((patch) => ({ source: patch.source, role: 'patch' as const })),
    ].map(({ source, role }) => ({
      kind: source.kind,
      name: source.name,
      version: source.deb?.version ?? spec.version,
      integrity: source.isProjectFile ? projectIntegrity(resolve(root, source.url.slice('file:'.length))) : source.integrity,
      isProjectFile: source.isProjectFile,
      url: source.url,
      spec: key,
      role,
    }));
    const item: InventorySpec = {
      path: key,
      name: spec.name,
      version: spec.version,
      requires: spec.requires.map((name) => relative(root, join(dirname(spec.path), `${name}${specSuffix}`))),
      // The build environment first: the packages every step ran on, then the spec's own.
      buildRequires: [
        ...[buildEnvironmentSpecOf(spec)].filter((path): path is string => path !== undefined).map((path) => relative(root, path)),
        ...spec.buildRequires.map((name) => relative(root, join(dirname(spec.path), `${name}${specSuffix}`))),
      ],
      sources: inputs,
      packages: debsOfSpec.get(key)!.map(packageKey),
      buildEnvironment: spec.build.length === 0 ? 'none' : spec.buildEnvironment,
    };
    if (spec.description !== undefined) item.description = spec.description;
    return item;
  });

  const diffIds = layers.map((layer) => layer.diffId);
  const configDigest = digestBytes(imageConfigJson(description.config, diffIds));
  return {
    target,
    description: relative(root, descriptionPath),
    name: description.tags[0] ?? target,
    tags: description.tags,
    architecture: description.config.architecture ?? 'amd64',
    os: description.config.os ?? 'linux',
    configDigest,
    distro,
    layers,
    specs: specs.sort((a, b) => compare(a.path, b.path)),
    packages: [...packagesByKey.values()].sort((a, b) => compare(a.key, b.key)),
    files,
  };
}

/** The image description of an image target, checked: ERR_NOT_AN_IMAGE when there is none. */
export function requireDescription(root: string, target: string): string {
  const description = descriptionOfTarget(target);
  if (description === undefined || !existsSync(join(root, description))) {
    throw new RedoError('ERR_NOT_AN_IMAGE', `redo: "${target}": not an image target`, {
      details: [description === undefined ? 'wanted: NAME.tar or NAME.oci.tar' : `wanted: an image description "${description}"`],
      hint: 'name an image target such as image.tar, built from NAME.yaml beside it',
    });
  }
  return join(root, description);
}

/** `deb:NAME=VERSION?arch=A`; for an npm or PyPI package `npm:NAME@VERSION` or `pypi:NAME==VERSION`. */
export function packageKey(deb: { name: string; version: string; architecture: string; ecosystem?: 'npm' | 'pypi' }): string {
  if (deb.ecosystem === 'npm') return `npm:${deb.name}@${deb.version}`;
  if (deb.ecosystem === 'pypi') return `pypi:${deb.name}==${deb.version}`;
  return `deb:${deb.name}=${deb.version}?arch=${deb.architecture}`;
}

/** Package URL of a Debian package (purl-spec `deb` type): `pkg:deb/debian/NAME@VERSION?arch=A&distro=debian-12`. */
export function purlOf(deb: { name: string; version: string; architecture: string }, distro: string | undefined): string {
  const encode = (text: string): string => text.replace(/[^A-Za-z0-9.+~_-]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return `pkg:deb/debian/${encode(deb.name)}@${encode(deb.version)}?arch=${encode(deb.architecture)}${distro === undefined ? '' : `&distro=${distro}`}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function projectIntegrity(path: string): Integrity | undefined {
  if (isFolder(path)) return integrityOfFolder(path);
  try {
    return integrityOfBytes(readFileSync(path));
  } catch {
    return undefined;
  }
}

/**
 * The Debian release the package versions name (`+deb12u1` → debian-12) when they all
 * name one, else undefined (no guess).
 */
function distroOf(debs: DebPackage[]): string | undefined {
  const releases = new Set<string>();
  for (const deb of debs) {
    if (deb.distro !== undefined) releases.add(deb.distro.slice('debian-'.length));
    const match = /\+deb([0-9]+)u[0-9]+/.exec(deb.version);
    if (match !== null) releases.add(match[1]!);
  }
  return releases.size === 1 ? `debian-${[...releases][0]}` : undefined;
}

/** sha256 and sha1 of an inventory file's bytes (read from its layer), or undefined when it has no content. */
export function checksumsOfFile(file: InventoryFile): { sha256Hex: string; sha1Hex: string } | undefined {
  if (file.sha256Hex !== undefined) return { sha256Hex: file.sha256Hex, sha1Hex: file.sha1Hex! };
  if (file.content === undefined) return undefined;
  return checksumsOf({ path: Buffer.from(file.path), type: 'file', mode: 0, uid: 0, gid: 0, sizeBytes: file.sizeBytes, content: { kind: 'path', ...file.content } });
}

/** sha256 and sha1 of a regular file entry whose content lies in a tar file at an offset. */
function checksumsOf(entry: TarEntry): { sha256Hex: string; sha1Hex: string } {
  const sha256 = createHash('sha256');
  const sha1 = createHash('sha1');
  const content = entry.content;
  if (content !== undefined && content.kind === 'path') {
    const fd = openSync(content.path, 'r');
    try {
      const chunk = Buffer.alloc(Math.min(1 << 20, Math.max(entry.sizeBytes, 1)));
      let done = 0;
      while (done < entry.sizeBytes) {
        const want = Math.min(chunk.length, entry.sizeBytes - done);
        const got = readSync(fd, chunk, 0, want, (content.offsetBytes ?? 0) + done);
        if (got <= 0) break;
        sha256.update(chunk.subarray(0, got));
        sha1.update(chunk.subarray(0, got));
        done += got;
      }
    } finally {
      closeSync(fd);
    }
  }
  return { sha256Hex: sha256.digest('hex'), sha1Hex: sha1.digest('hex') };
}

/** The spec a fragment tar comes from: `X.spec.yaml` for `X.fragment.tar` and for a layer of it, `X@LAYER.fragment.tar`; undefined when there is none. */
function specOfFragment(tarPath: string): string | undefined {
  const match = /^(.*?)(@[^/]*)?\.fragment\.tar$/.exec(tarPath);
  if (match === null || match[1]!.endsWith('/')) return undefined;
  const specPath = `${match[1]}${specSuffix}`;
  return existsSync(specPath) ? specPath : undefined;
}

/** The fragment tars a layer tar is or holds (through layer lists `X.layer`, recursively), absolute; each has a spec. */
function fragmentTarsOf(tarPath: string): string[] {
  if (specOfFragment(tarPath) !== undefined) return [tarPath];
  const list = /^(.*)\.layer\.tar$/.exec(tarPath);
  if (list === null || !existsSync(`${list[1]}.layer`)) return [];
  return readFileSync(`${list[1]}.layer`, 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '' && !line.endsWith('/'))
    .flatMap((input) => fragmentTarsOf(join(dirname(tarPath), input)));
}

type UseSpec = (specPath: string, isLayer?: boolean) => Promise<{ spec: Spec; debs: DebPackage[] }>;

/**
 * A lookup from member path (latin1 key, no leading slash) to origin for the tar at
 * `tarPath`: a fragment's spec and packages, a layer list's inputs, or nothing known.
 */
async function originsOfTar(tarPath: string, root: string, useSpec: UseSpec): Promise<(key: string) => FileOrigin | undefined> {
  const fragmentSpec = specOfFragment(tarPath);
  if (fragmentSpec !== undefined) {
    const { spec, debs } = await useSpec(fragmentSpec, true);
    // The first delivered package naming a path owns it (a folder several packages list included).
    const owner = new Map<string, string>();
    for (const deb of debs) {
      if (!deb.isDelivered) continue;
      for (const path of deb.deliveredPaths) if (!owner.has(path)) owner.set(path, packageKey(deb));
    }
    return (key) => {
      const found = owner.get(key);
      if (found !== undefined) return { kind: 'package', package: found, spec: spec.relativePath };
      return { kind: 'spec', spec: spec.relativePath };
    };
  }
  const list = /^(.*)\.layer\.tar$/.exec(tarPath);
  if (list !== null && existsSync(`${list[1]}.layer`)) {
    const folder = dirname(tarPath);
    const inputs = readFileSync(`${list[1]}.layer`, 'utf8')
      .split('\n')
      .map((line) => line.replace(/#.*/, '').trim())
      .filter((line) => line !== '');
    const lookups: Array<{ paths: Set<string>; originOf: (key: string) => FileOrigin | undefined }> = [];
    for (const input of inputs) {
      if (input.endsWith('/')) {
        const projectFolder = relative(root, join(folder, input));
        lookups.push({
          paths: new Set(),
          originOf: (key) => (existsSync(join(folder, input, key)) ? { kind: 'folder', folder: `${projectFolder}/`, projectPath: join(projectFolder, key) } : undefined),
        });
        continue;
      }
      const inputPath = join(folder, input);
      if (!existsSync(inputPath)) continue;
      const paths = new Set(entriesOfTar(inputPath).map((entry) => entry.path.toString('latin1')));
      const inner = await originsOfTar(inputPath, root, useSpec);
      lookups.push({ paths, originOf: (key) => (paths.has(key) ? inner(key) ?? { kind: 'target', target: relative(root, inputPath) } : undefined) });
    }
    return (key) => {
      for (const lookup of lookups) {
        const origin = lookup.originOf(key);
        if (origin !== undefined) return origin;
      }
      return undefined;
    };
  }
  return () => undefined;
}

/** Hex of the image digest used to name documents derived from an inventory. */
export function imageIdHex(inventory: Inventory): string {
  return digestHex(inventory.configDigest);
}

