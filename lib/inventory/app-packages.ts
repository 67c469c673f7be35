/** The npm and PyPI packages of a spec's lock files, as the inventory lists them: name, version, purl, licence from their own metadata, and the files each installed. */

import { resolve } from 'node:path';
import { entriesOfTar, readEntryBytes, type TarEntry } from '../image/tar.js';
import { readNpmLock, packagesToInstall } from '../sources/npm/lock.js';
import { normalName, readRequirements } from '../sources/pypi/requirements.js';
import type { AppDependencies, Spec } from '../sources/spec.js';
import { cacheDirFrom, originInStore } from '../sources/store.js';
import { licenceOfDeclaration } from './licence.js';
import { builtFragmentsOf } from './lock-packages.js';
import type { DebPackage, PackageProvider } from './packages.js';

/** `pkg:npm/%40scope/name@version` (purl-spec: the scope's `@` percent-encoded). */
export function npmPurl(name: string, version: string): string {
  const encode = (text: string): string => encodeURIComponent(text);
  const [scope, bare] = name.startsWith('@') ? [name.slice(0, name.indexOf('/')), name.slice(name.indexOf('/') + 1)] : [undefined, name];
  return `pkg:npm/${scope !== undefined ? `${encode(scope)}/` : ''}${encode(bare)}@${encode(version)}`;
}

/** `pkg:pypi/name@version` (purl-spec: the PEP 503 normal name, `_` as `-`, lower case). */
export function pypiPurl(name: string, version: string): string {
  return `pkg:pypi/${encodeURIComponent(normalName(name))}@${encodeURIComponent(version)}`;
}

/**
 * A PackageProvider for specs with `npm:`/`pypi:` dependencies. Each package of the lock
 * (npm: those `npm ci` installs; PyPI: each requirement) is one package with its purl,
 * its pin (the lock's integrity; the wheel's sha256 the cache holds, else the only hash
 * written) and its run-time dependencies. What the image holds comes from the spec's
 * fragments (those the image holds, else those built): for npm, the package's folder
 * `PATH/LOCATION` minus its nested `node_modules`, its licence and description from
 * its own package.json there; for PyPI, the files its `*.dist-info/RECORD` names, its
 * licence (License-Expression, else License) and summary from its METADATA. A package
 * the fragments do not hold is listed as not delivered, with the lock's licence (npm)
 * or none. Reads the lock files and fragments; never fetches.
 */
export function appPackageProvider(options: { env?: NodeJS.ProcessEnv; cacheDir?: string } = {}): PackageProvider {
  const cacheDir = options.cacheDir ?? cacheDirFrom(options.env ?? process.env);
  return {
    async packagesOf(spec: Spec, fragments: readonly string[] = []): Promise<DebPackage[]> {
      if (spec.appDependencies.length === 0) return [];
      const tars = [...new Set([...fragments, ...builtFragmentsOf(spec.path)])];
      const byPath = new Map<string, TarEntry>();
      for (const tar of tars) for (const entry of entriesOfTar(tar)) if (!byPath.has(entry.path.toString('latin1'))) byPath.set(entry.path.toString('latin1'), entry);
      const out: DebPackage[] = [];
      for (const deps of spec.appDependencies) {
        out.push(...(deps.ecosystem === 'npm' ? await npmPackages(spec, deps, byPath) : await pypiPackages(spec, deps, byPath, cacheDir)));
      }
      return out;
    },
  };
}

function textOf(byPath: Map<string, TarEntry>, key: string): string | undefined {
  const entry = byPath.get(key);
  return entry?.type === 'file' ? readEntryBytes(entry)?.toString('utf8') : undefined;
}

async function npmPackages(spec: Spec, deps: AppDependencies, byPath: Map<string, TarEntry>): Promise<DebPackage[]> {
  const lock = await readNpmLock(resolve(spec.root, deps.lock), deps.lock);
  const prefix = deps.path.replace(/^\/+/, '');
  const keys = [...byPath.keys()];
  return packagesToInstall(lock, deps.isDevIncluded).map((locked) => {
    const folder = `${prefix === '' ? '' : `${prefix}/`}${locked.location}`;
    const manifestText = textOf(byPath, `${folder}/package.json`);
    let manifest: Record<string, unknown> = {};
    try {
      manifest = manifestText === undefined ? {} : (JSON.parse(manifestText) as Record<string, unknown>);
    } catch {
      // An unreadable package.json declares nothing.
    }
    const declared = typeof manifest['license'] === 'string'
      ? manifest['license']
      : typeof (manifest['license'] as { type?: unknown } | undefined)?.type === 'string' ? (manifest['license'] as { type: string }).type : undefined;
    const delivered = new Set<string>();
    if (manifestText !== undefined) {
      delivered.add(folder);
      for (const key of keys) {
        if (!key.startsWith(`${folder}/`)) continue;
        const rest = key.slice(folder.length + 1);
        if (rest === 'node_modules' || rest.startsWith('node_modules/')) continue;
        delivered.add(key);
      }
    }
    const control = new Map<string, string>();
    if (locked.dependencies.length > 0) control.set('depends', locked.dependencies.join(', '));
    if (typeof manifest['description'] === 'string') control.set('description', manifest['description']);
    if (typeof manifest['homepage'] === 'string') control.set('homepage', manifest['homepage']);
    return {
      name: locked.name,
      version: locked.version,
      architecture: 'all',
      integrity: locked.integrity as DebPackage['integrity'],
      url: locked.resolved,
      spec: spec.relativePath,
      isDelivered: manifestText !== undefined,
      deliveredPaths: delivered,
      control,
      licence: manifestText !== undefined
        ? licenceOfDeclaration(declared, `/${folder}/package.json`)
        : licenceOfDeclaration(locked.license, `${deps.lock} (${locked.location})`),
      ecosystem: 'npm' as const,
      purl: npmPurl(locked.name, locked.version),
    };
  });
}

/** RFC 822 style headers of a METADATA file (first value of each, lower-case names) and its classifiers. */
function parseMetadata(text: string): { fields: Map<string, string>; classifiers: string[] } {
  const fields = new Map<string, string>();
  const classifiers: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') break;
    const match = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
    if (match === null) continue;
    const name = match[1]!.toLowerCase();
    if (name === 'classifier') classifiers.push(match[2]!);
    else if (!fields.has(name)) fields.set(name, match[2]!.trim());
  }
  return { fields, classifiers };
}

async function pypiPackages(spec: Spec, deps: AppDependencies, byPath: Map<string, TarEntry>, cacheDir: string): Promise<DebPackage[]> {
  const requirements = await readRequirements(resolve(spec.root, deps.lock), deps.lock);
  const prefix = deps.path.replace(/^\/+/, '');
  // Every installed distribution under the target: NAME-VERSION.dist-info/METADATA.
  const installed = new Map<string, { folder: string; fields: Map<string, string>; classifiers: string[] }>();
  for (const key of byPath.keys()) {
    const match = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/([^/]+)\\.dist-info/METADATA$`).exec(key);
    if (match === null) continue;
    const { fields, classifiers } = parseMetadata(textOf(byPath, key) ?? '');
    installed.set(`${normalName(fields.get('name') ?? '')}==${fields.get('version') ?? ''}`, { folder: `${prefix}/${match[1]}.dist-info`, fields, classifiers });
  }
  const out: DebPackage[] = [];
  for (const requirement of requirements) {
    const found = installed.get(`${requirement.normalName}==${requirement.version}`);
    const delivered = new Set<string>();
    const control = new Map<string, string>();
    let declared: string | undefined;
    if (found !== undefined) {
      for (const line of (textOf(byPath, `${found.folder}/RECORD`) ?? '').split('\n')) {
        const path = line.split(',')[0];
        if (path === undefined || path === '' || path.startsWith('..')) continue;
        const key = `${prefix}/${path}`;
        if (!byPath.has(key)) continue;
        delivered.add(key);
        // The folders a distribution's files lie in (below the target) are its own too.
        for (let slash = key.lastIndexOf('/'); slash > prefix.length; slash = key.lastIndexOf('/', slash - 1)) delivered.add(key.slice(0, slash));
      }
      delivered.add(found.folder);
      declared = found.fields.get('license-expression') ?? found.fields.get('license');
      if (declared === undefined || declared === '' || declared === 'UNKNOWN') {
        const classifier = found.classifiers.find((text) => text.startsWith('License :: OSI Approved :: '));
        const known: Record<string, string> = { 'MIT License': 'MIT', 'Apache Software License': 'Apache-2.0', 'ISC License (ISCL)': 'ISC', 'Python Software Foundation License': 'PSF-2.0' };
        if (classifier !== undefined) declared = known[classifier.slice('License :: OSI Approved :: '.length)] ?? classifier;
      }
      const summary = found.fields.get('summary');
      if (summary !== undefined && summary !== '' && summary !== 'UNKNOWN') control.set('description', summary);
      const homepage = found.fields.get('home-page');
      if (homepage !== undefined && homepage !== '' && homepage !== 'UNKNOWN') control.set('homepage', homepage);
    }
    let integrity: string | undefined = requirement.sha256Hex.length === 1 ? sriOf(requirement.sha256Hex[0]!) : undefined;
    // The hash whose file the cache holds (the one the build fetched); a look at the
    // index, no hashing: the build already proved the bytes.
    for (const hex of requirement.sha256Hex) {
      if ((await originInStore(cacheDir, sriOf(hex) as never)) !== undefined) {
        integrity = sriOf(hex);
        break;
      }
    }
    out.push({
      name: requirement.name,
      version: requirement.version,
      architecture: 'all',
      integrity: integrity as DebPackage['integrity'],
      url: `pypi:${requirement.name}==${requirement.version}`,
      spec: spec.relativePath,
      isDelivered: found !== undefined,
      deliveredPaths: delivered,
      control,
      licence: found !== undefined ? licenceOfDeclaration(declared, `/${found.folder}/METADATA`) : licenceOfDeclaration(undefined, `${deps.lock}:${requirement.line}`),
      ecosystem: 'pypi',
      purl: pypiPurl(requirement.name, requirement.version),
    });
  }
  return out;
}

function sriOf(hex: string): string {
  return `sha256-${Buffer.from(hex, 'hex').toString('base64')}`;
}
