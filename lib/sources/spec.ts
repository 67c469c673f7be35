/** Target spec files (`targets/NAME.spec.yaml`): parse, validate, locate fields (YAML read through lib/yaml.ts). */

import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type YAMLMap } from '../yaml.js';
import { RedoError } from '../errors.js';
import { parseIntegrity, type Integrity } from './integrity.js';
import { compileGlob } from './glob.js';
import { parsePackageText, type PackageList, type PackageListEntry } from './debian/package-list.js';

/** The file name suffix of a spec: `targets/busybox.spec.yaml` holds the spec named `busybox`. */
export const specSuffix = '.spec.yaml';

/** Where a source's bytes come from. */
export type SourceKind = 'file' | 'http' | 'deb';

/** Byte offsets of a source's fields in the spec text, so `pin` can edit it in place. */
export interface SourceLocation {
  /** 1-based line of the source's `url`. */
  line: number;
  /** Offsets [start, end) of the `integrity` value, when the field is present. */
  integrityRange?: [number, number];
  /** Offset just past the `url` value, where a missing integrity is inserted. */
  urlEnd: number;
  /** Column (0-based) of the `url` key: the indentation of sibling fields. */
  keyColumn: number;
  /** True when the source is written as a flow map `{url: ..., integrity: ...}`. */
  isFlow: boolean;
}

/** One pinned input of a spec: a source, or a patch (which is a source applied with `patch`). */
export interface SourceSpec {
  kind: SourceKind;
  /** The url as written in the spec (`file:src/x.c`, `https://…`, `deb:PKG=VERSION?arch=A`). */
  url: string;
  /** File name the bytes get in the build folder; for deb, the package name. */
  name: string;
  /** The pin; undefined before `redo-ts pin` has run, and for project files. */
  integrity: Integrity | undefined;
  /**
   * True for a `file:` source written with `integrity: project`: a file versioned with
   * the project itself, read as it is now (the engine tracks its content), never pinned.
   */
  isProjectFile: boolean;
  /** For `deb:` sources: package, version and optional architecture. */
  deb?: { package: string; version: string; arch?: string };
  /**
   * For http(s) sources and patches: the exact size in bytes. A download stops as soon
   * as it passes it (instead of at the default limit) and must end exactly there.
   */
  sizeBytes?: number;
  /** For archives: unpack into the build folder (`true` → `.`, or a subfolder) before patches. */
  unpack?: string;
  /** For `deb:` sources: which package paths to deliver (globs over `/…` paths; default all). */
  include?: string[];
  exclude?: string[];
  /** For `deb:` sources: whether package files go into the fragment (default true). */
  isDelivered: boolean;
  /** For `deb:` sources: the layer their files go to (default: the spec's layer). */
  layer?: string;
  location: SourceLocation;
}

/** A patch: a pinned source applied with `patch -pSTRIP` in folder `dir` of the build folder. */
export interface PatchSpec {
  source: SourceSpec;
  strip: number;
  dir: string;
}

/** One `files` entry: which built paths to deliver and the metadata they get. */
export interface FileRule {
  /** Glob over absolute image paths (`/usr/bin/*`, `/etc/**`). */
  pattern: string;
  /** Compiled `pattern`. */
  matches: (path: string) => boolean;
  mode?: number;
  uid?: number;
  gid?: number;
  layer?: string;
  line: number;
}

/**
 * An application's own dependencies, installed from the lock file the team keeps
 * (`npm:` with a package-lock.json, `pypi:` with a hashed requirements.txt): every
 * package a pinned source, installed by the ecosystem's own tool in the build step.
 */
export interface AppDependencies {
  ecosystem: 'npm' | 'pypi';
  /** The lock (package-lock.json) or requirements file, relative to the project root. */
  lock: string;
  /** Absolute image folder: npm installs `PATH/node_modules`, pip installs into PATH (`--target`). */
  path: string;
  /** npm: also install devDependencies (default false). */
  isDevIncluded: boolean;
  /** pypi: the index URL to fetch from instead of the machine's pip configuration. */
  index?: string;
  /** The layer of the installed files (default: the spec's layer). */
  layer?: string;
  /** 1-based line of the field in the spec. */
  line: number;
}

/** A validated target spec. Paths are absolute; `relativePath` is relative to `root`. */
export interface Spec {
  path: string;
  relativePath: string;
  root: string;
  name: string;
  version: string;
  description?: string;
  /** Default layer for everything this spec delivers (defaults to `name`). */
  layer: string;
  sources: SourceSpec[];
  patches: PatchSpec[];
  /** sh steps, each run with `sh -eu -c` in the build folder. */
  build: string[];
  files: FileRule[];
  /** Run-time dependencies: names of specs beside this one. */
  requires: string[];
  /** Build-time dependencies: names of specs beside this one. */
  buildRequires: string[];
  /** The spec file's text, kept so `pin` can edit it without re-reading. */
  text: string;
  /** Debian packages resolved by `redo-ts lock` into `NAME.lock.yaml` beside the spec (docs/debian.md). */
  packages?: PackageList;
  /**
   * Where build steps run: `sandbox` (the default: the project's build environment plus
   * build-requires, docs/specs.md) or `host` (the caller's tools: the output is not
   * hermetic, and the fragment, SBOM and verify say so).
   */
  buildEnvironment: 'sandbox' | 'host';
  /** Application dependencies from npm and PyPI lock files (docs/npm.md, docs/pypi.md), in that order. */
  appDependencies: AppDependencies[];
  /**
   * Build caches: environment variables (GOCACHE, PIP_CACHE_DIR, CCACHE_DIR ...) that
   * name a folder kept between builds of this spec, like BuildKit's cache mounts.
   */
  caches: string[];
}

/** Options for `loadSpec`. */
export interface LoadSpecOptions {
  /** Project root (for `file:` sources and error paths); found from the spec path if omitted. */
  root?: string;
}

const topFields = ['name', 'version', 'description', 'layer', 'sources', 'patches', 'build', 'files', 'requires', 'build-requires', 'build-environment', 'packages', 'architecture', 'recommends', 'exclude', 'npm', 'pypi', 'caches'];
const appFields = { npm: ['lock', 'path', 'dev', 'layer'], pypi: ['requirements', 'path', 'index', 'layer'] } as const;
const packageFields = ['name', 'version', 'arch', 'exclude', 'layer'];
const sourceFields = ['name', 'url', 'integrity', 'size', 'unpack', 'include', 'exclude', 'deliver', 'layer'];
const patchFields = ['name', 'url', 'integrity', 'size', 'strip', 'dir'];
const fileFields = ['path', 'mode', 'owner', 'group', 'layer'];

const namePattern = /^[a-z0-9][a-z0-9._+-]*$/;
const debPackagePattern = /^[a-z0-9][a-z0-9+.-]+$/;
const debVersionPattern = /^[0-9A-Za-z.+~:-]+$/;
const debArchPattern = /^[a-z0-9-]+$/;

/**
 * Finds the project root for a spec the way the engine does: the nearest ancestor of
 * its folder holding `.redo/`, `rules/`, `package.json` or `.git`; else the spec's own
 * folder. Never throws.
 */
export async function findProjectRoot(specPath: string): Promise<string> {
  const start = dirname(resolve(specPath));
  const ancestors: string[] = [];
  for (let dir = start; ; dir = dirname(dir)) {
    ancestors.push(dir);
    if (dirname(dir) === dir) break;
  }
  const exists = async (path: string): Promise<boolean> => stat(path).then(() => true, () => false);
  for (const dir of ancestors) {
    for (const marker of ['.redo', 'rules', 'package.json', '.git']) if (await exists(join(dir, marker))) return dir;
  }
  return start;
}

/** A problem found while validating: field path, 1-based line, message. */
interface Problem {
  field: string;
  line: number;
  message: string;
  isUnknownField: boolean;
}

/**
 * Reads and validates the spec at `path`. Returns the Spec; throws RedoError
 * ERR_SPEC_NOT_FOUND when the file is missing, ERR_SPEC_UNKNOWN_FIELD when the first
 * problem is a field the format does not define, ERR_SPEC_INVALID for every other
 * problem. The headline is `redo: "FILE:LINE": FIELD: PROBLEM`; further problems follow
 * as detail lines. Reads only; writes nothing.
 */
export async function loadSpec(path: string, options: LoadSpecOptions = {}): Promise<Spec> {
  const absolute = resolve(path);
  const root = options.root !== undefined ? resolve(options.root) : await findProjectRoot(absolute);
  const relativePath = relative(root, absolute).split(sep).join('/');
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (cause) {
    throw new RedoError('ERR_SPEC_NOT_FOUND', `redo: "${relativePath}": spec file cannot be read`, {
      details: [`error: ${(cause as Error).message}`],
      hint: `specs live in targets/NAME${specSuffix}`,
      cause,
    });
  }
  return parseSpec(text, absolute, root);
}

/**
 * Validates spec `text` as if read from `absolutePath` in project `root`. Same contract
 * as `loadSpec`, without touching the disk.
 */
export function parseSpec(text: string, absolutePath: string, root: string): Spec {
  const relativePath = relative(root, absolutePath).split(sep).join('/');
  const lineCounter = new LineCounter();
  // The failsafe schema keeps every scalar a string, so `0755` stays octal text and
  // `no` stays a word; this module does all typing itself.
  const doc = parseDocument(text, { schema: 'failsafe', lineCounter, prettyErrors: false, uniqueKeys: true });
  const lineOf = (offset: number): number => lineCounter.linePos(offset).line;
  const columnOf = (offset: number): number => lineCounter.linePos(offset).col - 1;
  const problems: Problem[] = [];
  const report = (field: string, node: Node | Pair | null | undefined, message: string, isUnknownField = false): void => {
    const offset = nodeOffset(node);
    problems.push({ field, line: lineOf(offset), message, isUnknownField });
  };

  for (const error of doc.errors) {
    problems.push({ field: 'yaml', line: lineOf(error.pos[0]), message: firstLine(error.message), isUnknownField: false });
  }
  if (problems.length > 0) throw specError(relativePath, problems);
  if (!isMap(doc.contents)) {
    report('(top)', doc.contents, 'the spec must be a map of fields (name: …, version: …)');
    throw specError(relativePath, problems);
  }
  const top = doc.contents;
  checkFields(top, topFields, '', report);

  const name = requiredString(top, 'name', '', report);
  if (name !== undefined && !namePattern.test(name)) {
    report('name', top.get('name', true) as Node, `"${name}" must be lowercase letters, digits and . _ + - (starting with a letter or digit)`);
  }
  const fileName = basename(absolutePath);
  if (name !== undefined && fileName.endsWith(specSuffix) && fileName !== `${name}${specSuffix}`) {
    report('name', top.get('name', true) as Node, `"${name}" does not match the file name (wanted "${fileName.slice(0, -specSuffix.length)}")`);
  }
  const version = requiredString(top, 'version', '', report);
  const description = optionalString(top, 'description', '', report);
  const layer = optionalString(top, 'layer', '', report) ?? name ?? '';

  const sources: SourceSpec[] = [];
  forEachMap(top, 'sources', report, (item, field) => {
    checkFields(item, sourceFields, field, report);
    const source = readSource(item, field, root, report, lineOf, columnOf);
    if (source === undefined) return;
    const unpack = item.get('unpack', true) as Node | undefined;
    if (unpack !== undefined) {
      const value = scalarText(unpack);
      if (value === 'true') source.unpack = '.';
      else if (value === 'false') source.unpack = undefined;
      else if (value !== undefined && isSafeRelative(value)) source.unpack = value;
      else report(`${field}.unpack`, unpack, 'must be true, false, or a relative folder without ".."');
    }
    if (source.kind === 'deb') {
      source.include = stringList(item, 'include', field, report, true);
      source.exclude = stringList(item, 'exclude', field, report, true);
      const deliverNode = item.get('deliver', true) as Node | undefined;
      const deliver = deliverNode === undefined ? undefined : scalarText(deliverNode) ?? '';
      if (deliver !== undefined && deliver !== 'true' && deliver !== 'false') {
        report(`${field}.deliver`, item.get('deliver', true) as Node, 'must be true or false');
      }
      source.isDelivered = deliver !== 'false';
      source.layer = optionalString(item, 'layer', field, report);
      if (source.unpack !== undefined) report(`${field}.unpack`, item.get('unpack', true) as Node, 'applies to file: and http(s): archives, not deb: packages');
    } else {
      for (const debOnly of ['include', 'exclude', 'deliver', 'layer']) {
        if (item.has(debOnly)) report(`${field}.${debOnly}`, item.get(debOnly, true) as Node, 'applies only to deb: sources (deliver built files through `files`)');
      }
    }
    sources.push(source);
  });
  checkUniqueNames(sources, 'sources', report, top);

  const patches: PatchSpec[] = [];
  forEachMap(top, 'patches', report, (item, field) => {
    checkFields(item, patchFields, field, report);
    const source = readSource(item, field, root, report, lineOf, columnOf);
    if (source === undefined) return;
    if (source.kind === 'deb') report(`${field}.url`, item.get('url', true) as Node, 'a patch must be a file: or http(s): source');
    const stripText = optionalString(item, 'strip', field, report) ?? '1';
    const strip = /^[0-9]$/.test(stripText) ? Number(stripText) : undefined;
    if (strip === undefined) report(`${field}.strip`, item.get('strip', true) as Node, 'must be a number from 0 to 9');
    const dir = optionalString(item, 'dir', field, report) ?? '.';
    if (!isSafeRelative(dir)) report(`${field}.dir`, item.get('dir', true) as Node, 'must be a relative folder without ".."');
    patches.push({ source, strip: strip ?? 1, dir });
  });

  const build = stringList(top, 'build', '', report, false) ?? [];

  const files: FileRule[] = [];
  forEachMap(top, 'files', report, (item, field) => {
    checkFields(item, fileFields, field, report);
    const pattern = requiredString(item, 'path', field, report);
    if (pattern === undefined) return;
    const line = lineOf(nodeOffset(item.get('path', true) as Node));
    if (!pattern.startsWith('/') || pattern.split('/').includes('..')) {
      report(`${field}.path`, item.get('path', true) as Node, `"${pattern}" must be an absolute image path without ".." (like /usr/bin/hello)`);
      return;
    }
    const rule: FileRule = { pattern, matches: compileGlob(pattern), line };
    const mode = optionalString(item, 'mode', field, report);
    if (mode !== undefined) {
      if (/^0?[0-7]{3,4}$/.test(mode)) rule.mode = parseInt(mode, 8);
      else report(`${field}.mode`, item.get('mode', true) as Node, `"${mode}" must be octal, like "0755" or "4755"`);
    }
    for (const [key, target] of [['owner', 'uid'], ['group', 'gid']] as const) {
      const id = optionalString(item, key, field, report);
      if (id === undefined) continue;
      if (id === 'root') rule[target] = 0;
      else if (/^[0-9]{1,7}$/.test(id)) rule[target] = Number(id);
      else report(`${field}.${key}`, item.get(key, true) as Node, `"${id}" must be a number (or root): names have no meaning without the image's /etc/passwd`);
    }
    rule.layer = optionalString(item, 'layer', field, report);
    files.push(rule);
  });

  const requires = stringList(top, 'requires', '', report, false) ?? [];
  const buildRequires = stringList(top, 'build-requires', '', report, false) ?? [];
  for (const [field, names] of [['requires', requires], ['build-requires', buildRequires]] as const) {
    names.forEach((dep, index) => {
      if (!namePattern.test(dep)) report(`${field}[${index}]`, listItem(top, field, index), `"${dep}" is not a spec name`);
      if (dep === name) report(`${field}[${index}]`, listItem(top, field, index), 'a spec cannot depend on itself');
    });
  }

  const packages = readPackageList(top, report, lineOf);
  const buildEnvironment = optionalString(top, 'build-environment', '', report) ?? 'sandbox';
  if (buildEnvironment !== 'sandbox' && buildEnvironment !== 'host') {
    report('build-environment', top.get('build-environment', true) as Node, `"${buildEnvironment}" must be sandbox (the default) or host`);
  }
  const appDependencies = readAppDependencies(top, root, report, lineOf);
  const caches = stringList(top, 'caches', '', report, false) ?? [];
  const reserved = ['PATH', 'HOME', 'DESTDIR', 'SRCDIR', 'SYSROOT', 'NAME', 'VERSION', 'SOURCE_DATE_EPOCH', 'LC_ALL', 'TZ', 'TMPDIR'];
  caches.forEach((variable, index) => {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable) || reserved.includes(variable) || variable.startsWith('REDO_')) {
      report(`caches[${index}]`, listItem(top, 'caches', index), `"${variable}" must be the name of an environment variable a build tool reads its cache folder from (GOCACHE, PIP_CACHE_DIR ...), not one redo-ts sets`);
    }
  });
  // What the tool installs is delivered without a `files` rule: node_modules, or pip's target.
  for (const deps of appDependencies) {
    const pattern = deps.ecosystem === 'npm' ? `${deps.path === '/' ? '' : deps.path}/node_modules` : deps.path;
    files.push({ pattern, matches: compileGlob(pattern), line: deps.line, ...(deps.layer !== undefined ? { layer: deps.layer } : {}) });
  }

  if (problems.length > 0) throw specError(relativePath, problems);
  const spec: Spec = {
    path: absolutePath, relativePath, root, name: name!, version: version!, layer,
    sources, patches, build, files, requires, buildRequires, text, appDependencies, caches,
    buildEnvironment: buildEnvironment === 'host' ? 'host' : 'sandbox',
  };
  if (description !== undefined) spec.description = description;
  if (packages !== undefined) spec.packages = packages;
  return spec;
}

/** The `packages` list and its companions `architecture`, `recommends`, `exclude` (docs/debian.md). */
function readPackageList(top: YAMLMap, report: Report, lineOf: (offset: number) => number): PackageList | undefined {
  const node = top.get('packages', true) as Node | undefined;
  if (node === undefined) {
    for (const only of ['architecture', 'recommends', 'exclude']) {
      if (top.has(only)) report(only, top.get(only, true) as Node, 'applies only to a spec with a `packages` list');
    }
    return undefined;
  }
  const entries: PackageListEntry[] = [];
  if (!isSeq(node)) {
    report('packages', node, 'must be a list of package names or maps');
    return undefined;
  }
  node.items.forEach((item, index) => {
    const field = `packages[${index}]`;
    const line = lineOf(nodeOffset(item as Node));
    if (isMap(item)) {
      checkFields(item, packageFields, field, report);
      const name = requiredString(item, 'name', field, report);
      if (name === undefined) return;
      const version = optionalString(item, 'version', field, report);
      const arch = optionalString(item, 'arch', field, report);
      const text = `${name}${arch !== undefined ? `:${arch}` : ''}${version !== undefined ? ` (${/^(<<|<=|>=|>>|=)/.test(version) ? version : `= ${version}`})` : ''}`;
      const relation = parsePackageText(text);
      if (typeof relation === 'string') {
        report(field, item, relation);
        return;
      }
      const entry: PackageListEntry = { relation, exclude: stringList(item, 'exclude', field, report, true) ?? [], line };
      const layer = optionalString(item, 'layer', field, report);
      if (layer !== undefined) entry.layer = layer;
      entries.push(entry);
      return;
    }
    const text = scalarText(item as Node);
    if (text === undefined || text.trim() === '') {
      report(field, item as Node, 'must be a package name (python3), with an optional constraint (libc6 (>= 2.36)), or a map');
      return;
    }
    const relation = parsePackageText(text);
    if (typeof relation === 'string') report(field, item as Node, relation);
    else entries.push({ relation, exclude: [], line });
  });
  const seen = new Map<string, number>();
  entries.forEach((entry, index) => {
    const earlier = seen.get(entry.relation.name);
    if (earlier !== undefined) report(`packages[${index}]`, node.items[index] as Node, `"${entry.relation.name}" is already listed as packages[${earlier}]`);
    seen.set(entry.relation.name, index);
  });
  const list: PackageList = { entries, isRecommendsWanted: false, exclude: stringList(top, 'exclude', '', report, true) ?? [] };
  const architecture = optionalString(top, 'architecture', '', report);
  if (architecture !== undefined) {
    if (debArchPattern.test(architecture)) list.architecture = architecture;
    else report('architecture', top.get('architecture', true) as Node, `"${architecture}" is not a Debian architecture (like amd64 or arm64)`);
  }
  // A true/false field: the one place an unquoted boolean is what is meant.
  const recommendsNode = top.get('recommends', true) as Node | undefined;
  const recommends = recommendsNode === undefined ? undefined : scalarText(recommendsNode) ?? '';
  if (recommends !== undefined && recommends !== 'true' && recommends !== 'false') report('recommends', top.get('recommends', true) as Node, 'must be true or false');
  list.isRecommendsWanted = recommends === 'true';
  return list;
}

/** The `npm:` and `pypi:` maps (docs/npm.md, docs/pypi.md). */
function readAppDependencies(top: YAMLMap, root: string, report: Report, lineOf: (offset: number) => number): AppDependencies[] {
  const out: AppDependencies[] = [];
  for (const ecosystem of ['npm', 'pypi'] as const) {
    const node = top.get(ecosystem, true) as Node | undefined;
    if (node === undefined) continue;
    if (!isMap(node)) {
      report(ecosystem, node, `must be a map (${appFields[ecosystem].join(', ')})`);
      continue;
    }
    checkFields(node, appFields[ecosystem], ecosystem, report);
    const lockField = ecosystem === 'npm' ? 'lock' : 'requirements';
    const lock = requiredString(node, lockField, ecosystem, report);
    const lockNode = node.get(lockField, true) as Node | undefined;
    const wantedName = ecosystem === 'npm' ? 'package-lock.json' : 'a requirements file';
    let lockPath: string | undefined;
    if (lock !== undefined) {
      const relativeFile = lock.replace(/^file:/, '');
      const inside = relative(root, resolve(root, relativeFile));
      if (relativeFile === '' || isAbsolute(relativeFile) || inside.startsWith('..') || isAbsolute(inside)) {
        report(`${ecosystem}.${lockField}`, lockNode, `"${lock}" must name ${wantedName} inside the project, relative to its root`);
      } else if (ecosystem === 'npm' && basename(relativeFile) !== 'package-lock.json') {
        report(`${ecosystem}.${lockField}`, lockNode, `"${lock}" must be a package-lock.json (npm-shrinkwrap.json and yarn/pnpm locks are not read)`);
      } else {
        lockPath = inside.split(sep).join('/');
      }
    }
    const path = optionalString(node, 'path', ecosystem, report) ?? (ecosystem === 'npm' ? '/app' : '/app/packages');
    if (!path.startsWith('/') || path.split('/').includes('..') || /[*?[]/.test(path)) {
      report(`${ecosystem}.path`, node.get('path', true) as Node, `"${path}" must be an absolute image folder without ".." or globs (like /app)`);
    }
    // A true/false field, like recommends: an unquoted boolean is what is meant.
    const devNode = node.get('dev', true) as Node | undefined;
    const dev = devNode === undefined ? undefined : scalarText(devNode) ?? '';
    if (dev !== undefined && dev !== 'true' && dev !== 'false') report(`${ecosystem}.dev`, node.get('dev', true) as Node, 'must be true or false');
    const index = optionalString(node, 'index', ecosystem, report);
    if (index !== undefined && !/^(https?|file):\/\//.test(index)) report(`${ecosystem}.index`, node.get('index', true) as Node, `"${index}" must be an http(s):// or file:// URL of a simple index`);
    if (lockPath === undefined) continue;
    const deps: AppDependencies = {
      ecosystem, lock: lockPath, path: path.length > 1 ? path.replace(/\/+$/, '') : path, isDevIncluded: dev === 'true', line: lineOf(nodeOffset(node)),
    };
    if (index !== undefined) deps.index = index;
    const layer = optionalString(node, 'layer', ecosystem, report);
    if (layer !== undefined) deps.layer = layer;
    out.push(deps);
  }
  return out;
}

/**
 * Path of the spec named `name` required by `spec`: `NAME.spec.yaml` in the same folder.
 */
export function requiredSpecPath(spec: Spec, name: string): string {
  return join(dirname(spec.path), `${name}${specSuffix}`);
}

type Report = (field: string, node: Node | Pair | null | undefined, message: string, isUnknownField?: boolean) => void;

function specError(relativePath: string, problems: Problem[]): RedoError {
  const sorted = [...problems].sort((a, b) => a.line - b.line);
  const [first, ...rest] = sorted;
  return new RedoError(
    first!.isUnknownField ? 'ERR_SPEC_UNKNOWN_FIELD' : 'ERR_SPEC_INVALID',
    `redo: "${relativePath}:${first!.line}": ${first!.field}: ${first!.message}`,
    {
      details: rest.map((p) => `${relativePath}:${p.line}: ${p.field}: ${p.message}`),
      hint: 'docs/specs.md describes every field',
    },
  );
}

function nodeOffset(node: Node | Pair | null | undefined): number {
  if (node === null || node === undefined) return 0;
  if ('range' in node && node.range) return node.range[0];
  if ('key' in node) return nodeOffset(node.key as Node);
  return 0;
}

function firstLine(text: string): string {
  return text.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

function scalarText(node: Node | undefined | null): string | undefined {
  if (node === undefined || node === null || !isScalar(node)) return undefined;
  return String(node.value ?? '');
}

function checkFields(map: YAMLMap, allowed: readonly string[], prefix: string, report: Report): void {
  for (const pair of map.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    if (!allowed.includes(key)) {
      report(`${prefix}${prefix ? '.' : ''}${key}`, pair.key as Node, `unknown field (allowed: ${allowed.join(', ')})`, true);
    }
  }
}

function requiredString(map: YAMLMap, key: string, prefix: string, report: Report): string | undefined {
  const field = `${prefix}${prefix ? '.' : ''}${key}`;
  if (!map.has(key)) {
    report(field, map as unknown as Node, 'is required');
    return undefined;
  }
  return optionalString(map, key, prefix, report);
}

/**
 * Why an unquoted value that other YAML readers (the 1.2 core schema: image
 * descriptions, editors, linters) read as a boolean or as a number they cannot hold
 * must be quoted here, or undefined. Specs read every value as text, so `build: [true]`
 * would run the command "true" and `version: 1e400` would be a version that other
 * tools read as Infinity.
 */
function ambiguousTextProblem(node: Node | undefined | null): string | undefined {
  if (node === undefined || node === null || !isScalar(node) || node.type !== 'PLAIN' || typeof node.value !== 'string') return undefined;
  const text = node.value;
  if (/^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/.test(text)) return `"${text}" reads as a boolean in YAML; quote it ("${text}") if the text is meant`;
  if (/^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$/.test(text)) return `"${text}" reads as a number YAML cannot hold as text; quote it`;
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(text) && !Number.isFinite(Number(text))) {
    return `"${text}" reads as a number too large for YAML (${Number(text)}); quote it`;
  }
  return undefined;
}

function optionalString(map: YAMLMap, key: string, prefix: string, report: Report): string | undefined {
  const node = map.get(key, true) as Node | undefined;
  if (node === undefined) return undefined;
  const field = `${prefix}${prefix ? '.' : ''}${key}`;
  const ambiguity = ambiguousTextProblem(node);
  if (ambiguity !== undefined) {
    report(field, node, ambiguity);
    return undefined;
  }
  const value = scalarText(node);
  if (value === undefined) {
    report(field, node, 'must be a single value, not a list or map');
    return undefined;
  }
  if (value.trim() === '') {
    report(field, node ?? map, 'must not be empty');
    return undefined;
  }
  return value;
}

function stringList(map: YAMLMap, key: string, prefix: string, report: Report, isOptional: boolean): string[] | undefined {
  const node = map.get(key, true) as Node | undefined;
  if (node === undefined) return isOptional ? undefined : [];
  const field = `${prefix}${prefix ? '.' : ''}${key}`;
  if (!isSeq(node)) {
    report(field, node, 'must be a list');
    return undefined;
  }
  const values: string[] = [];
  node.items.forEach((item, index) => {
    const value = scalarText(item as Node);
    const ambiguity = ambiguousTextProblem(item as Node);
    if (ambiguity !== undefined) report(`${field}[${index}]`, item as Node, ambiguity);
    else if (value === undefined || value.trim() === '') report(`${field}[${index}]`, item as Node, 'must be a non-empty string');
    else values.push(value);
  });
  return values;
}

function forEachMap(map: YAMLMap, key: string, report: Report, visit: (item: YAMLMap, field: string) => void): void {
  const node = map.get(key, true) as Node | undefined;
  if (node === undefined) return;
  if (!isSeq(node)) {
    report(key, node, 'must be a list');
    return;
  }
  node.items.forEach((item, index) => {
    const field = `${key}[${index}]`;
    if (!isMap(item)) report(field, item as Node, 'must be a map of fields');
    else visit(item, field);
  });
}

function listItem(map: YAMLMap, key: string, index: number): Node | undefined {
  const node = map.get(key, true);
  return isSeq(node) ? (node.items[index] as Node | undefined) : undefined;
}

function isSafeRelative(path: string): boolean {
  return path !== '' && !isAbsolute(path) && !path.split('/').includes('..');
}

function readSource(
  item: YAMLMap, field: string, root: string, report: Report,
  lineOf: (offset: number) => number, columnOf: (offset: number) => number,
): SourceSpec | undefined {
  const url = requiredString(item, 'url', field, report);
  if (url === undefined) return undefined;
  const urlNode = item.get('url', true) as Node;
  const urlPair = item.items.find((pair) => isScalar(pair.key) && pair.key.value === 'url')!;
  const integrityNode = item.get('integrity', true) as Node | undefined;
  const location: SourceLocation = {
    line: lineOf(nodeOffset(urlNode)),
    urlEnd: urlNode.range![1],
    keyColumn: columnOf(nodeOffset(urlPair.key as Node)),
    isFlow: item.flow === true,
  };
  let integrity: Integrity | undefined;
  let isProjectFile = false;
  if (integrityNode !== undefined) {
    location.integrityRange = [integrityNode.range![0], integrityNode.range![1]];
    const text = scalarText(integrityNode);
    if (text === 'project') {
      if (!url.startsWith('file:')) report(`${field}.integrity`, integrityNode, '"project" applies only to file: sources (files versioned with the project)');
      isProjectFile = true;
    } else if (text === undefined || text.trim() === '') {
      report(`${field}.integrity`, integrityNode, 'must be an SRI string like sha256-BASE64 (or leave it out and run `redo-ts pin`)');
    } else {
      integrity = parseIntegrity(text.trim());
      if (integrity === undefined) {
        report(`${field}.integrity`, integrityNode, `"${text}" is not an SRI string (sha256-, sha384- or sha512- followed by the base64 digest)`);
      }
    }
  }
  const explicitName = optionalString(item, 'name', field, report);
  const sizeText = optionalString(item, 'size', field, report);
  let sizeBytes: number | undefined;
  if (sizeText !== undefined) {
    sizeBytes = /^[0-9]{1,16}$/.test(sizeText.trim()) ? Number(sizeText.trim()) : undefined;
    if (sizeBytes === undefined) report(`${field}.size`, item.get('size', true) as Node, `"${sizeText}" must be a whole number of bytes`);
    else if (!url.startsWith('http://') && !url.startsWith('https://')) {
      report(`${field}.size`, item.get('size', true) as Node, 'applies to http(s) sources (a download); other sources are files already here');
    }
  }
  const base = { url, integrity, isProjectFile, isDelivered: false, location, ...(sizeBytes !== undefined ? { sizeBytes } : {}) };
  if (url.startsWith('deb:')) {
    const deb = parseDebUrl(url);
    if (typeof deb === 'string') {
      report(`${field}.url`, urlNode, deb);
      return undefined;
    }
    return { ...base, kind: 'deb', name: explicitName ?? deb.package, deb, isDelivered: true };
  }
  if (url.startsWith('file:')) {
    const relativeFile = url.slice('file:'.length);
    const absoluteFile = resolve(root, relativeFile);
    const inside = relative(root, absoluteFile);
    if (relativeFile === '' || isAbsolute(relativeFile) || inside.startsWith('..') || isAbsolute(inside)) {
      report(`${field}.url`, urlNode, `"${url}" must name a file inside the project, relative to its root (file:src/hello.c)`);
      return undefined;
    }
    const name = explicitName ?? basename(relativeFile);
    if (!isPlainName(name)) report(`${field}.name`, urlNode, `"${name}" must be a plain file name`);
    return { ...base, kind: 'file', name };
  }
  if (url.startsWith('http://') || url.startsWith('https://')) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      report(`${field}.url`, urlNode, `"${url}" is not a valid URL`);
      return undefined;
    }
    const name = explicitName ?? decodeURIComponent(parsed.pathname.split('/').pop() ?? '');
    if (!isPlainName(name)) {
      report(`${field}.name`, urlNode, `cannot take a file name from "${url}"; give one with name:`);
      return undefined;
    }
    return { ...base, kind: 'http', name };
  }
  report(`${field}.url`, urlNode, `"${url}" must start with file:, http://, https:// or deb:`);
  return undefined;
}

function isPlainName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

/**
 * Parses `deb:PACKAGE=VERSION` with an optional `?arch=ARCH`. Returns the parts, or a
 * problem message.
 */
export function parseDebUrl(url: string): { package: string; version: string; arch?: string } | string {
  const body = url.slice('deb:'.length);
  const [spec, query] = body.split('?', 2) as [string, string | undefined];
  const equals = spec.indexOf('=');
  if (equals < 0) return `"${url}" must pin a version: deb:PACKAGE=VERSION`;
  const pkg = spec.slice(0, equals);
  const version = spec.slice(equals + 1);
  if (!debPackagePattern.test(pkg)) return `"${pkg}" is not a Debian package name`;
  if (!debVersionPattern.test(version)) return `"${version}" is not a Debian version`;
  if (query === undefined) return { package: pkg, version };
  const match = /^arch=(.+)$/.exec(query);
  if (!match || !debArchPattern.test(match[1]!)) return `"?${query}" must be ?arch=ARCHITECTURE (like ?arch=amd64)`;
  return { package: pkg, version, arch: match[1]! };
}

function checkUniqueNames(sources: SourceSpec[], field: string, report: Report, top: YAMLMap): void {
  const seen = new Map<string, number>();
  sources.forEach((source, index) => {
    const key = source.kind === 'deb' ? `deb:${source.name}` : source.name;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      const node = listItem(top, field, index);
      report(`${field}[${index}].name`, node, `"${source.name}" is already the name of ${field}[${earlier}]; give one a different name:`);
    } else {
      seen.set(key, index);
    }
  });
}
