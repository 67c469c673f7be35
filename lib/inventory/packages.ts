/** The packages a spec installs: the interface, and the provider for its pinned `deb:` sources, read from the source cache (lock-packages.ts serves package lists). */

import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { readDebControl, readDebEntries } from '../sources/deb.js';
import { fetchSource } from '../sources/fetch.js';
import { keptDebPaths } from '../sources/fragment.js';
import type { Integrity } from '../sources/integrity.js';
import type { SourceSpec, Spec } from '../sources/spec.js';
import { cacheDirFrom } from '../sources/store.js';
import { readEntryBytes, type TarEntry } from '../image/tar.js';
import { licenceOfCopyright, parseDeb822, type LicenceFinding } from './licence.js';

/** A Debian package a spec names, with what its own metadata says. */
export interface DebPackage {
  name: string;
  version: string;
  /** From the control file (`Architecture:`), else the source's `?arch=`. */
  architecture: string;
  /** The pin of the .deb file. */
  integrity: Integrity | undefined;
  /** The url as the spec writes it (`deb:NAME=VERSION?arch=A`). */
  url: string;
  /** The spec naming it, relative to the project root. */
  spec: string;
  /** Whether its files go into the image (`deliver: false` makes it a build input only). */
  isDelivered: boolean;
  /** Image paths (`usr/bin/x`, no leading slash) of the package that the spec delivers, after include/exclude. */
  deliveredPaths: Set<string>;
  /** Control fields, lower-case names (`depends`, `maintainer`, `homepage`, `source`, `description`, …). */
  control: Map<string, string>;
  licence: LicenceFinding;
  /** Names of packages of the same spec whose dependencies pulled it in (a lock's `pulled-by`, `requested` left out). */
  pulledBy?: string[];
  /** `debian-N` when the index that listed it says so (a lock's suite), else undefined. */
  distro?: string;
  /** Set for an npm or PyPI package of a spec's lock file (app-packages.ts); Debian's otherwise. */
  ecosystem?: 'npm' | 'pypi';
  /** Its package URL when not a Debian one (`pkg:npm/...`, `pkg:pypi/...`). */
  purl?: string;
}

/**
 * Supplies the packages of a spec. The default reads each `deb:` source's .deb (from the
 * source cache, fetching through apt only when the cache lacks it). A lock-file
 * provider can implement the same call.
 */
export interface PackageProvider {
  /**
   * `fragments`: the spec's fragment tars this image holds as layers or layer-list
   * inputs (`NAME.fragment.tar`, `NAME@LAYER.fragment.tar`), absolute; empty for a spec
   * the image only requires.
   */
  packagesOf(spec: Spec, fragments?: readonly string[]): Promise<DebPackage[]>;
}

/** Options for debSourceProvider. */
export interface DebSourceProviderOptions {
  /** Source cache; default cacheDirFrom(env). */
  cacheDir?: string;
  env?: NodeJS.ProcessEnv;
  /** Never download a .deb missing from the cache (ERR_SOURCE_UNREACHABLE). */
  isOffline?: boolean;
}

/**
 * A PackageProvider reading the pinned `deb:` sources of specs: each .deb is fetched as a
 * build would (verified against its pin), its control file and data archive read
 * (`/usr/share/doc/NAME/copyright` gives the licence), and the spec's include/exclude
 * applied to its paths exactly as buildFragment applies them. Results are memoised per
 * url, and kept in the cache as a summary per pin (`CACHE/inventory-v1/`), so the next
 * inventory reads neither the .deb nor apt. Writes that and a scratch folder it removes.
 */
export function debSourceProvider(options: DebSourceProviderOptions = {}): PackageProvider {
  const env = options.env ?? process.env;
  const cacheDir = options.cacheDir ?? cacheDirFrom(env);
  const memo = new Map<string, Promise<PackageSummary>>();
  const readPackage = (source: SourceSpec, spec: Spec): Promise<PackageSummary> => {
    const key = `${source.url} ${source.integrity}`;
    let found = memo.get(key);
    if (found === undefined) {
      found = (async () => {
        const label = `${source.deb!.package}=${source.deb!.version}`;
        return summaryOfDeb({
          cacheDir,
          integrity: source.integrity,
          name: source.deb!.package,
          label,
          debPath: async () => (await fetchSource(source, { cacheDir, root: spec.root, isOffline: options.isOffline === true, specPath: spec.relativePath, env })).path,
        });
      })();
      memo.set(key, found);
    }
    return found;
  };
  return {
    async packagesOf(spec) {
      const out: DebPackage[] = [];
      for (const source of spec.sources) {
        if (source.kind !== 'deb' || source.deb === undefined) continue;
        const { control, entries, licence } = await readPackage(source, spec);
        out.push({
          name: source.deb.package,
          version: source.deb.version,
          architecture: control.get('architecture') ?? source.deb.arch ?? 'all',
          integrity: source.integrity,
          url: source.url,
          spec: spec.relativePath,
          isDelivered: source.isDelivered,
          deliveredPaths: source.isDelivered ? keptDebPaths(entries, source) : new Set(),
          control,
          licence,
        });
      }
      return out;
    },
  };
}

/** What the inventory needs of one .deb: its control fields, member paths and types, licence. */
export interface PackageSummary {
  control: Map<string, string>;
  entries: Array<{ path: Buffer; type: TarEntry['type'] }>;
  licence: LicenceFinding;
}

/** What summaryOfDeb needs: where to find (or put) the summary, and how to get the .deb when there is none. */
export interface DebSummaryRequest {
  cacheDir: string;
  /** The .deb's pin; without one nothing is kept in the cache. */
  integrity: string | undefined;
  /** Package name: its copyright file is `/usr/share/doc/NAME/copyright`. */
  name: string;
  /** `NAME=VERSION`, for messages. */
  label: string;
  /** The verified .deb's path (called only when no summary is kept). */
  debPath: () => Promise<string>;
}

/**
 * The summary of one .deb (control fields, member paths and types, licence from its
 * machine-readable copyright file): read from `CACHE/inventory-v1/` when kept, else from
 * the .deb (control member and data archive, unpacked into a scratch folder it removes),
 * then kept. Throws what `debPath` and the .deb readers throw (ERR_DEB_*, ERR_SOURCE_*).
 */
export async function summaryOfDeb(request: DebSummaryRequest): Promise<PackageSummary> {
  const summaryPath = request.integrity === undefined ? undefined : summaryPathOf(request.cacheDir, request.integrity);
  const known = summaryPath === undefined ? undefined : await readSummary(summaryPath);
  if (known !== undefined) return known;
  const debPath = await request.debPath();
  const control = parseDeb822(await readDebControl(debPath, request.label))[0] ?? new Map<string, string>();
  const scratch = await mkdtemp(join(tmpdir(), 'redo-ts-inventory-'));
  try {
    const entries = await readDebEntries(debPath, request.label, join(scratch, 'data.tar'));
    const copyrightPath = `usr/share/doc/${request.name}/copyright`;
    const copyright = entries.find((entry) => entry.type === 'file' && entry.path.toString('latin1') === copyrightPath);
    const text = copyright === undefined ? undefined : readContent(copyright);
    // Entries point into the scratch tar by offset; keep only what outlives it.
    const kept = entries.map((entry) => ({ path: entry.path, type: entry.type }));
    const summary = { control, entries: kept, licence: licenceOfCopyright(text, `/${copyrightPath}`) };
    if (summaryPath !== undefined) await writeSummary(summaryPath, summary);
    return summary;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/*
 * Package summaries are kept in the source cache, one JSON file per pinned .deb:
 *   CACHE/inventory-v1/<sha256 hex of the pin text>.json
 *   {"control":[[field,value],...],"entries":[[latin1 path,type],...],"licence":{...}}
 * They are a function of the pinned bytes alone, so reading one instead of unpacking the
 * .deb again changes no output; a file that does not parse is ignored and rewritten.
 */
function summaryPathOf(cacheDir: string, integrity: string): string {
  return join(cacheDir, 'inventory-v1', `${createHash('sha256').update(integrity).digest('hex')}.json`);
}

async function readSummary(path: string): Promise<PackageSummary | undefined> {
  try {
    const data = JSON.parse(await readFile(path, 'utf8')) as { control: Array<[string, string]>; entries: Array<[string, TarEntry['type']]>; licence: LicenceFinding };
    return {
      control: new Map(data.control),
      entries: data.entries.map(([path, type]) => ({ path: Buffer.from(path, 'latin1'), type })),
      licence: data.licence,
    };
  } catch {
    return undefined;
  }
}

async function writeSummary(path: string, summary: PackageSummary): Promise<void> {
  const text = JSON.stringify({
    control: [...summary.control],
    entries: summary.entries.map((entry) => [entry.path.toString('latin1'), entry.type]),
    licence: summary.licence,
  });
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(temporary, text);
    await rename(temporary, path);
  } catch {
    // The summary only saves time; a cache that cannot be written is not an error.
    await rm(temporary, { force: true });
  }
}

/** Reads a small file entry's bytes (content by path and offset) as utf8 text; undefined for content not in a file. */
export function readContent(entry: TarEntry): string | undefined {
  return entry.content?.kind === 'path' ? readEntryBytes(entry)!.toString('utf8') : undefined;
}

