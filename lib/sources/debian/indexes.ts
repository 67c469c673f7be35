/** Debian package indexes: found through the machine's apt (or fetched from a mirror), verified as apt verifies them, parsed. */

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { RedoError } from '../../errors.js';
import { parseParagraphs, type Paragraph } from './control.js';
import { compareDebianVersions, parseRelation, parseRelations, type Relation } from './version.js';

/** Debian's archive keyring (package debian-archive-keyring): what Release files are checked against by default. */
export const defaultKeyringPath = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** One binary package version from a Packages index. */
export interface PackageRecord {
  name: string;
  version: string;
  architecture: string;
  /** Source package name (the `Source` field without its version, else the package name). */
  source: string;
  /** Pool path relative to the archive root: `pool/main/g/glibc/libc6_2.36-9_amd64.deb`. */
  filename: string;
  sizeBytes: number;
  sha256Hex: string;
  depends: Relation[][];
  preDepends: Relation[][];
  recommends: Relation[][];
  conflicts: Relation[][];
  breaks: Relation[][];
  provides: Relation[];
  multiArch: string;
  isEssential: boolean;
  /** `required`, `important`, `standard`, `optional` or `extra`: breaks ties between providers. */
  priority: string;
  /** The suite whose index listed it (`bookworm-security`). */
  suite: string;
}

/** A verified index the records came from, as the lock records it (no mirror host in it). */
export interface IndexInfo {
  /** Codename (else suite) of the Release file (`bookworm-updates`). */
  suite: string;
  origin: string;
  /** The Release file's `Date`. */
  date: string;
  /** Index path inside the suite: `main/binary-amd64/Packages`. */
  path: string;
  /** SRI sha256 of the uncompressed index, as the signed Release file lists it. */
  integrity: string;
  /** Archive root URL it was read from, in mirror mode (packages of this suite are fetched from there); absent with apt. */
  mirror?: string;
}

/** Every package version the verified indexes offer for one architecture (plus `all`). */
export interface PackageUniverse {
  architecture: string;
  /** Versions of each package name, highest first. */
  byName: Map<string, PackageRecord[]>;
  /** Packages providing each virtual name, with the provided version when the Provides is versioned. */
  providers: Map<string, Array<{ record: PackageRecord; version?: string }>>;
  indexes: IndexInfo[];
  /** Release files left out because their signature is not from the keyring, with why. */
  skipped: string[];
}

/** Options shared by both ways of loading indexes. */
export interface IndexOptions {
  /** Target architecture; default: the machine's (`dpkg --print-architecture`), else amd64. */
  architecture?: string;
  /** OpenPGP keyring that must have signed each Release file; default defaultKeyringPath. */
  keyringPath?: string;
  env?: NodeJS.ProcessEnv;
}

/** One mirror and the suites to read from it. */
export interface MirrorSource {
  /** Archive root URL, the folder holding `dists/` and `pool/`. */
  url: string;
  suites: string[];
}

/** Options for mirror mode: a mirror base URL and the suites and components to read. */
export interface MirrorOptions extends IndexOptions {
  /** Archive root URL, the folder holding `dists/` and `pool/`. */
  mirror: string;
  suites: string[];
  components?: string[];
  /** Further mirrors with their own suites (the security archive lives at another URL), read into the same universe. */
  more?: MirrorSource[];
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, maxBuffer = 256 * 1024 * 1024): Promise<{ status: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(command, args, { env: { ...env, LC_ALL: 'C' }, encoding: 'buffer', maxBuffer }, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : 127;
      resolvePromise({ status, stdout, stderr: (error !== null && status === 127 ? `${error.message}\n` : '') + stderr.toString('utf8') });
    });
  });
}

/** hostArchitecture's answers in this process, by the PATH that found dpkg. */
const hostArchitectures = new Map<string, Promise<string>>();

/** The machine's dpkg architecture, else amd64 (a host without dpkg). Asked once per process and PATH. */
export function hostArchitecture(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const key = env.PATH ?? '';
  let answer = hostArchitectures.get(key);
  if (answer === undefined) {
    answer = run('dpkg', ['--print-architecture'], env).then((result) => {
      const text = result.stdout.toString('utf8').trim();
      return result.status === 0 && text !== '' ? text : 'amd64';
    });
    hostArchitectures.set(key, answer);
  }
  return answer;
}

function indexError(headline: string, details: string[], hint: string, cause?: unknown): RedoError {
  return new RedoError('ERR_DEBIAN_INDEX', `redo: ${headline}`, { details, hint, cause });
}

/**
 * Checks the signature of a Release file with gpgv against `keyringPath` and returns the
 * signed text (for InRelease, only what the signature covers). `detachedSignature` is
 * the Release.gpg path for a plain Release file. Throws ERR_DEBIAN_INDEX with gpgv's
 * last lines when the signature is bad, missing, or from a key outside the keyring.
 */
export async function verifyRelease(releasePath: string, keyringPath: string, env: NodeJS.ProcessEnv, detachedSignature?: string): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'redo-ts-gpgv-'));
  try {
    const args = ['--homedir', home, '--keyring', keyringPath];
    const result = detachedSignature === undefined
      ? await run('gpgv', [...args, '--output', '-', releasePath], env)
      : await run('gpgv', [...args, detachedSignature, releasePath], env);
    if (result.status !== 0) {
      const tail = result.stderr.trim().split('\n').filter((line) => line !== '').slice(-3).map((line) => `gpgv: ${line}`);
      throw indexError(`"${releasePath}": Release file signature not verified`, [`keyring: ${keyringPath}`, ...tail],
        'the index is not signed by a key of the keyring; install debian-archive-keyring (and gpgv), or name another keyring');
    }
    return detachedSignature === undefined ? result.stdout.toString('utf8') : await readFile(releasePath, 'utf8');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** The `SHA256` table of a Release file: index path → {hex, size}. */
function releaseChecksums(release: Paragraph): Map<string, { sha256Hex: string; sizeBytes: number }> {
  const table = new Map<string, { sha256Hex: string; sizeBytes: number }>();
  for (const line of (release.get('SHA256') ?? '').split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length === 3 && /^[0-9a-f]{64}$/.test(parts[0]!)) table.set(parts[2]!, { sha256Hex: parts[0]!, sizeBytes: Number(parts[1]) });
  }
  return table;
}

/** Checks index bytes against the signed Release file's SHA256 entry for `metaKey`; returns its IndexInfo. */
function checkIndex(bytes: Buffer, metaKey: string, release: Paragraph, label: string): IndexInfo {
  const wanted = releaseChecksums(release).get(metaKey);
  // The codename (bookworm-security) keeps its meaning; the suite (oldstable-security) moves.
  const suite = release.get('Codename') ?? release.get('Suite') ?? '';
  if (wanted === undefined) {
    throw indexError(`"${label}": the Release file of ${suite} lists no SHA256 for ${metaKey}`, [], 'the index cannot be trusted; run apt-get update, or check the mirror');
  }
  const foundHex = checkListed(bytes, wanted, label);
  return {
    suite,
    origin: release.get('Origin') ?? '',
    date: release.get('Date') ?? '',
    path: metaKey,
    integrity: `sha256-${Buffer.from(foundHex, 'hex').toString('base64')}`,
  };
}

/** Throws ERR_DEBIAN_INDEX unless `bytes` have the size and SHA256 the Release file lists; returns the hex. */
function checkListed(bytes: Buffer, wanted: { sha256Hex: string; sizeBytes: number }, label: string): string {
  const foundHex = createHash('sha256').update(bytes).digest('hex');
  if (foundHex !== wanted.sha256Hex || bytes.length !== wanted.sizeBytes) {
    throw indexError(`"${label}": index does not match its signed Release file`, [
      `wanted: sha256 ${wanted.sha256Hex}, ${wanted.sizeBytes} bytes`,
      `found:  sha256 ${foundHex}, ${bytes.length} bytes`,
    ], 'the index changed after its Release file was signed; run apt-get update (or fetch again) and lock again');
  }
  return foundHex;
}

/** The compressed forms of an index a mirror may serve, in apt's order of preference; `''` is the uncompressed file. */
const indexCompressions = ['.xz', '.gz', ''] as const;

/**
 * Fetches `metaKey` of one suite as apt does: the first compressed form (xz, gz, plain)
 * the signed Release file lists and the mirror serves is downloaded and must have the listed size and SHA256;
 * it is then decompressed, and the result must match the Release file's entry for the
 * uncompressed index (when listed). Returns the uncompressed bytes and their IndexInfo.
 */
async function fetchCheckedIndex(suiteUrl: string, metaKey: string, release: Paragraph, env: NodeJS.ProcessEnv): Promise<{ bytes: Buffer; info: IndexInfo }> {
  const table = releaseChecksums(release);
  const suffixes = indexCompressions.filter((candidate) => table.has(`${metaKey}${candidate}`));
  const suite = release.get('Codename') ?? release.get('Suite') ?? '';
  if (suffixes.length === 0) {
    throw indexError(`"${suiteUrl}/${metaKey}": the Release file of ${suite} lists no such index (neither .xz, .gz nor plain)`,
      [`listed: ${[...table.keys()].filter((key) => key.includes('/binary-')).slice(0, 6).join(', ') || 'no binary index'}`],
      'check the component and the architecture: the suite may not carry this architecture');
  }
  // As apt does, a listed form the mirror does not serve makes way for the next one.
  let raw: Buffer | undefined;
  let suffix = suffixes[0]!;
  for (const [index, candidate] of suffixes.entries()) {
    suffix = candidate;
    try {
      raw = await download(`${suiteUrl}/${metaKey}${candidate}`);
      break;
    } catch (error) {
      if (index === suffixes.length - 1) throw error;
    }
  }
  const url = `${suiteUrl}/${metaKey}${suffix}`;
  checkListed(raw!, table.get(`${metaKey}${suffix}`)!, url);
  const bytes = suffix === '' ? raw! : suffix === '.gz' ? gunzipSync(raw!) : await unxz(raw!, url, env);
  const plain = table.get(metaKey);
  const hex = plain === undefined ? createHash('sha256').update(bytes).digest('hex') : checkListed(bytes, plain, `${url} (decompressed)`);
  return {
    bytes,
    info: { suite, origin: release.get('Origin') ?? '', date: release.get('Date') ?? '', path: metaKey, integrity: `sha256-${Buffer.from(hex, 'hex').toString('base64')}` },
  };
}

/** Decompresses xz bytes with the system's xz (package xz-utils). Throws ERR_DEBIAN_INDEX. */
function unxz(bytes: Buffer, label: string, env: NodeJS.ProcessEnv): Promise<Buffer> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile('xz', ['--decompress', '--stdout'], { env: { ...env, LC_ALL: 'C' }, encoding: 'buffer', maxBuffer: 1024 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error === null) return resolvePromise(stdout);
      reject(indexError(`"${label}": cannot decompress the index`, [`xz: ${stderr.toString('utf8').trim() || error.message}`], 'install xz-utils, or check the mirror', error));
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(bytes);
  });
}

/** One Packages index the machine's apt knows about. */
interface AptIndexTarget {
  metaKey: string;
  baseUri: string;
  filename: string;
  architecture: string;
}

/** apt's URItoFileName: the scheme and user part dropped, `/` turned into `_`. */
function uriToFileName(uri: string): string {
  const withoutScheme = uri.replace(/^[a-z0-9+.-]+:\/\//i, '').replace(/^[^@/]*@/, '');
  return withoutScheme.replace(/\/+$/, '').replace(/\//g, '_').replace(/%/g, '%25').replace(/~/g, '%7e');
}

/**
 * Loads the Packages indexes of the machine's apt configuration (`apt-get indextargets`),
 * reading apt's lists folder without root and without writing anything. For each
 * suite, the InRelease (or Release + Release.gpg) file is verified with gpgv against
 * the keyring; suites signed by other keys are skipped and listed in `skipped`. Each
 * index (decompressed by `apt-helper cat-file`) must match the Release file's SHA256.
 * Throws ERR_DEBIAN_INDEX when apt is missing, no index remains, or an index is corrupt.
 */
export async function loadAptIndexes(options: IndexOptions = {}): Promise<PackageUniverse> {
  const env = options.env ?? process.env;
  const architecture = options.architecture ?? await hostArchitecture(env);
  const keyringPath = options.keyringPath ?? defaultKeyringPath;
  const listed = await run('apt-get', ['indextargets', '--format', '$(METAKEY)\t$(BASE_URI)\t$(FILENAME)\t$(IDENTIFIER)\t$(ARCHITECTURE)'], env);
  if (listed.status !== 0) {
    throw indexError('apt: cannot list the machine\'s package indexes', [`apt-get indextargets: ${listed.stderr.trim().split('\n').slice(-1)[0] ?? `status ${listed.status}`}`],
      'on a host without apt, lock from a mirror: redo-ts lock --mirror URL --suite SUITE');
  }
  const targets: AptIndexTarget[] = [];
  for (const line of listed.stdout.toString('utf8').split('\n')) {
    const [metaKey, baseUri, filename, identifier, arch] = line.split('\t');
    if (identifier !== 'Packages' || filename === undefined || (arch !== architecture && arch !== 'all')) continue;
    targets.push({ metaKey: metaKey!, baseUri: baseUri!, filename, architecture: arch });
  }
  targets.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
  const universe = emptyUniverse(architecture);
  // Verifying and decompressing run in child processes: start them all at once, then
  // add the indexes in their sorted order so the result does not depend on timing.
  const releases = new Map<string, Promise<Paragraph | string>>();
  const releaseOf = (target: AptIndexTarget): Promise<Paragraph | string> => {
    let release = releases.get(target.baseUri);
    if (release === undefined) {
      const stem = join(dirname(target.filename), uriToFileName(target.baseUri));
      release = verifyAptRelease(stem, keyringPath, env).then(
        (signed) => parseParagraphs(signed)[0] ?? new Map<string, string>(),
        (cause: unknown) => (cause instanceof RedoError ? `${target.baseUri}: ${cause.headline.replace(/^redo: /, '')}` : String(cause)),
      );
      releases.set(target.baseUri, release);
    }
    return release;
  };
  const loaded = targets.map((target) => Promise.all([releaseOf(target), run('/usr/lib/apt/apt-helper', ['cat-file', target.filename], env)]));
  for (const promise of loaded) promise.catch(() => undefined);
  const skipped = new Set<string>();
  for (const [index, target] of targets.entries()) {
    const [release, cat] = await loaded[index]!;
    if (typeof release === 'string') {
      if (!skipped.has(release)) universe.skipped.push(release);
      skipped.add(release);
      continue;
    }
    if (cat.status !== 0) {
      throw indexError(`"${target.filename}": cannot read the package index`, [`apt-helper: ${cat.stderr.trim()}`], 'run apt-get update');
    }
    const info = checkIndex(cat.stdout, target.metaKey, release, target.filename);
    addIndex(universe, cat.stdout.toString('utf8'), info);
  }
  if (universe.indexes.length === 0) {
    throw indexError(`the machine's apt indexes: no verified package index for ${architecture}`, universe.skipped.map((line) => `skipped: ${line}`), await aptHint(architecture, env));
  }
  return finishUniverse(universe, 'the machine\'s apt indexes');
}

/** What to run so apt has indexes for `architecture`: a foreign architecture must be added to dpkg first. */
async function aptHint(architecture: string, env: NodeJS.ProcessEnv): Promise<string> {
  const host = await hostArchitecture(env);
  const foreign = (await run('dpkg', ['--print-foreign-architectures'], env)).stdout.toString('utf8').split('\n').map((line) => line.trim());
  if (architecture !== host && !foreign.includes(architecture)) {
    return `apt fetches indexes only for dpkg's architectures: run \`dpkg --add-architecture ${architecture}\` then \`apt-get update\` (as root), or lock from a mirror with --mirror`;
  }
  return 'run apt-get update (as root) so apt has indexes, or lock from a mirror with --mirror';
}

async function verifyAptRelease(stem: string, keyringPath: string, env: NodeJS.ProcessEnv): Promise<string> {
  const inRelease = `${stem}_InRelease`;
  const exists = async (path: string): Promise<boolean> => readFile(path).then(() => true, () => false);
  if (await exists(inRelease)) return verifyRelease(inRelease, keyringPath, env);
  return verifyRelease(`${stem}_Release`, keyringPath, env, `${stem}_Release.gpg`);
}

/**
 * Loads Packages indexes from a mirror base URL (for hosts without apt, or a snapshot
 * mirror), and from each of `more` (the security archive has its own URL), into one
 * universe: `MIRROR/dists/SUITE/InRelease` verified with gpgv, then for each component
 * `main/binary-ARCH/Packages.xz` (else `.gz`, else plain: the first the Release file
 * lists), checked as apt checks it (fetchCheckedIndex). Each IndexInfo records its
 * mirror. Reads the network; writes only a scratch folder it removes. Throws
 * ERR_DEBIAN_INDEX (unreachable, unsigned, corrupt, not listed).
 */
export async function loadMirrorIndexes(options: MirrorOptions): Promise<PackageUniverse> {
  const env = options.env ?? process.env;
  const architecture = options.architecture ?? await hostArchitecture(env);
  const keyringPath = options.keyringPath ?? defaultKeyringPath;
  const universe = emptyUniverse(architecture);
  const scratch = await mkdtemp(join(tmpdir(), 'redo-ts-mirror-'));
  const sources: MirrorSource[] = [{ url: options.mirror, suites: options.suites }, ...(options.more ?? [])];
  try {
    for (const [sourceIndex, source] of sources.entries()) {
      const base = source.url.replace(/\/+$/, '');
      for (const suite of source.suites) {
        const releaseUrl = `${base}/dists/${suite}/InRelease`;
        const releaseFile = join(scratch, `${sourceIndex}-${suite.replace(/\//g, '_')}.InRelease`);
        await writeFile(releaseFile, await download(releaseUrl));
        const release = parseParagraphs(await verifyRelease(releaseFile, keyringPath, env))[0] ?? new Map<string, string>();
        for (const component of options.components ?? ['main']) {
          const { bytes, info } = await fetchCheckedIndex(`${base}/dists/${suite}`, `${component}/binary-${architecture}/Packages`, release, env);
          addIndex(universe, bytes.toString('utf8'), { ...info, mirror: source.url });
        }
      }
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return finishUniverse(universe, sources.map((source) => source.url.replace(/\/+$/, '')).join(', '));
}

async function download(url: string): Promise<Buffer> {
  let response: Response;
  try {
    response = await fetch(url);
  } catch (cause) {
    const reason = (cause as Error & { cause?: Error }).cause?.message ?? (cause as Error).message;
    throw indexError(`"${url}": cannot be fetched`, [`why: ${reason}`], 'check the mirror URL and the suite name', cause);
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw indexError(`"${url}": cannot be fetched`, [`why: HTTP status ${response.status}`], 'check the mirror URL and the suite name');
  }
  return Buffer.from(await response.arrayBuffer());
}

function emptyUniverse(architecture: string): PackageUniverse {
  return { architecture, byName: new Map(), providers: new Map(), indexes: [], skipped: [] };
}

/** Adds every record of one index text (for the universe's architecture or `all`). */
function addIndex(universe: PackageUniverse, text: string, info: IndexInfo): void {
  universe.indexes.push(info);
  // 60,000 paragraphs: only Package, Version and Architecture are read now; the rest of
  // a record is parsed when the resolver first touches it (see IndexedRecord).
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n\n', start);
    if (end < 0) end = text.length;
    if (end > start) {
      const paragraph = text.slice(start, end);
      const architecture = fieldOf(paragraph, 'Architecture');
      if (architecture === universe.architecture || architecture === 'all') {
        const name = fieldOf(paragraph, 'Package');
        const version = fieldOf(paragraph, 'Version');
        if (name !== undefined && version !== undefined) {
          const versions = universe.byName.get(name) ?? [];
          // The same version in two suites (a point release copied into updates): keep one.
          if (!versions.some((other) => other.version === version && other.architecture === architecture)) {
            versions.push(new IndexedRecord(name, version, architecture, info.suite, paragraph));
          }
          universe.byName.set(name, versions);
        }
      }
    }
    start = end + 2;
  }
}

/** The value of one single-line field of a paragraph (`Package`), or undefined. */
function fieldOf(paragraph: string, name: string): string | undefined {
  const at = paragraph.startsWith(`${name}: `) ? 0 : paragraph.indexOf(`\n${name}: `) + 1;
  if (at <= 0 && !paragraph.startsWith(`${name}: `)) return undefined;
  const from = at + name.length + 2;
  const end = paragraph.indexOf('\n', from);
  return paragraph.slice(from, end < 0 ? paragraph.length : end).trim();
}

/** A PackageRecord whose fields beyond name, version and architecture are parsed on first use. */
class IndexedRecord implements PackageRecord {
  private parsed: PackageRecord | undefined;
  constructor(
    readonly name: string,
    readonly version: string,
    readonly architecture: string,
    readonly suite: string,
    private readonly text: string,
  ) {}

  private get full(): PackageRecord {
    this.parsed ??= recordOf(parseParagraphs(this.text)[0] ?? new Map<string, string>(), this.suite) ?? emptyRecord(this);
    return this.parsed;
  }

  get source(): string { return this.full.source; }
  get filename(): string { return this.full.filename; }
  get sizeBytes(): number { return this.full.sizeBytes; }
  get sha256Hex(): string { return this.full.sha256Hex; }
  get depends(): Relation[][] { return this.full.depends; }
  get preDepends(): Relation[][] { return this.full.preDepends; }
  get recommends(): Relation[][] { return this.full.recommends; }
  get conflicts(): Relation[][] { return this.full.conflicts; }
  get breaks(): Relation[][] { return this.full.breaks; }
  get multiArch(): string { return this.full.multiArch; }
  get isEssential(): boolean { return this.full.isEssential; }
  get priority(): string { return this.full.priority; }
  get provides(): Relation[] {
    // Most packages provide nothing: skip the full parse for them.
    if (this.parsed === undefined && !this.text.includes('\nProvides: ')) return [];
    return this.full.provides;
  }
}

function emptyRecord(base: { name: string; version: string; architecture: string; suite: string }): PackageRecord {
  return {
    ...base, source: base.name, filename: '', sizeBytes: 0, sha256Hex: '', depends: [], preDepends: [], recommends: [], conflicts: [],
    breaks: [], provides: [], multiArch: 'no', isEssential: false, priority: 'optional',
  };
}

/** A PackageRecord from an index paragraph; undefined when a needed field is missing. */
export function recordOf(paragraph: Paragraph, suite: string): PackageRecord | undefined {
  const name = paragraph.get('Package');
  const version = paragraph.get('Version');
  const filename = paragraph.get('Filename');
  const sha256Hex = paragraph.get('SHA256');
  if (name === undefined || version === undefined || filename === undefined || sha256Hex === undefined) return undefined;
  const source = (paragraph.get('Source') ?? name).split(' ')[0]!;
  return {
    name,
    version,
    architecture: paragraph.get('Architecture') ?? '',
    source,
    filename,
    sizeBytes: Number(paragraph.get('Size') ?? 0),
    sha256Hex,
    depends: parseRelations(paragraph.get('Depends')),
    preDepends: parseRelations(paragraph.get('Pre-Depends')),
    recommends: parseRelations(paragraph.get('Recommends')),
    conflicts: parseRelations(paragraph.get('Conflicts')),
    breaks: parseRelations(paragraph.get('Breaks')),
    provides: (paragraph.get('Provides') ?? '').split(',').map(parseRelation).filter((r): r is Relation => r !== undefined),
    multiArch: paragraph.get('Multi-Arch') ?? 'no',
    isEssential: paragraph.get('Essential') === 'yes',
    priority: paragraph.get('Priority') ?? 'optional',
    suite,
  };
}

/**
 * Builds a universe from Packages index texts, unverified: for tests and callers that
 * verified the texts themselves. Each item is `{suite, text}`.
 */
export function universeFromTexts(architecture: string, indexes: ReadonlyArray<{ suite: string; text: string }>): PackageUniverse {
  const universe = emptyUniverse(architecture);
  for (const { suite, text } of indexes) {
    const hex = createHash('sha256').update(text).digest();
    addIndex(universe, text, { suite, origin: '', date: '', path: 'Packages', integrity: `sha256-${hex.toString('base64')}` });
  }
  return finishUniverse(universe, 'the given indexes');
}

function finishUniverse(universe: PackageUniverse, where: string): PackageUniverse {
  if (universe.indexes.length === 0) {
    throw indexError(`${where}: no verified package index for ${universe.architecture}`, universe.skipped.map((line) => `skipped: ${line}`),
      'run apt-get update (as root) so apt has indexes, or lock from a mirror with --mirror');
  }
  for (const versions of universe.byName.values()) versions.sort((a, b) => compareVersionsDescending(a.version, b.version));
  for (const versions of universe.byName.values()) {
    for (const record of versions) {
      for (const provided of record.provides) {
        const list = universe.providers.get(provided.name) ?? [];
        list.push(provided.constraint?.operator === '=' ? { record, version: provided.constraint.version } : { record });
        universe.providers.set(provided.name, list);
      }
    }
  }
  return universe;
}

function compareVersionsDescending(a: string, b: string): number {
  return compareDebianVersions(b, a);
}
