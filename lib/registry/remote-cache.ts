/**
 * The remote build cache: targets' outputs stored as OCI artifacts in a registry
 * repository, found by a key computed from the rule, the content of every dependency,
 * the declared environment and the platform. Implements the engine's TargetCache hook
 * (lib/engine/target-cache.ts) structurally; the CLI hands it to the engine.
 *
 * Two tags per entry, both naming the same artifact manifest:
 *
 *     rule-<sha256 of (format, redo-ts version, target, rule bytes, platform, env)>
 *         "the last entry stored for this target and rule": tells a fresh machine which
 *         dependencies to look at (found only by running the rule otherwise)
 *     deps-<sha256 of (rule key, every dependency path and identity)>
 *         the entry for exactly these dependency contents
 *
 *     manifest (application/vnd.oci.image.manifest.v1+json)
 *       config  application/vnd.redo-ts.cache.entry.v1+json   {format, target, rule,
 *               platform, ruleKey, depsKey, deps: [{path, identity}], output: {digest, size}}
 *       layers  [application/vnd.redo-ts.cache.output.v1]       the target's bytes
 */

import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { RedoError } from '../errors.js';
import { withScratchFolder } from '../sources/scratch.js';
import { MAX_MANIFEST_BYTES, RegistryClient } from './client.js';
import { parseReference, type RegistryReference } from './reference.js';

/** Media types of cache entries: never runnable images. */
export const cacheMediaTypes = {
  entry: 'application/vnd.redo-ts.cache.entry.v1+json',
  output: 'application/vnd.redo-ts.cache.output.v1',
} as const;

const manifestType = 'application/vnd.oci.image.manifest.v1+json';
const entryFormat = 1;

/** How a RemoteCache is set up. */
export interface RemoteCacheOptions {
  /** `HOST[:PORT]/REPOSITORY` (a tag, if given, is ignored: entries use their own tags). */
  reference: string;
  env: NodeJS.ProcessEnv;
  /** Absolute project root: rule files are read from here. */
  root: string;
  /** `os/architecture` of this machine, e.g. linux/amd64; part of every key. */
  platform: string;
  /** redo-ts's version: rules import the library, so another version is another key. */
  toolVersion: string;
  /** Look up only; never upload (--remote-cache-readonly). */
  isReadOnly: boolean;
  isInsecure?: boolean;
  /** Receives a message when an upload fails; the build goes on. */
  onWarning(message: string): void;
}

/** A dependency as an entry records it (identity null: must not exist). */
interface EntryDependency {
  path: string;
  identity: string | null;
}

interface Entry {
  format: number;
  target: string;
  rule: string;
  platform: string;
  ruleKey: string;
  depsKey: string;
  deps: EntryDependency[];
  output: { digest: string; size: number };
}

/** What a build did with the cache, for the summary line. */
export interface RemoteCacheCounts {
  hits: number;
  misses: number;
  stored: number;
  failedUploads: number;
}

/**
 * A rule is cacheable when its file has a line `# redo-ts: cacheable` (sh) or
 * `// redo-ts: cacheable` (TypeScript), optionally followed by `env=NAME,NAME`: the
 * environment variables its output depends on. SOURCE_DATE_EPOCH is always one.
 * Returns the variable names, or undefined when the rule is not cacheable. Pure.
 */
export function cacheableEnvOf(ruleText: string): string[] | undefined {
  const match = /^[ \t]*(?:#|\/\/)[ \t]*redo-ts:[ \t]*cacheable\b(.*)$/m.exec(ruleText);
  if (match === null) return undefined;
  const declared = /\benv=([A-Za-z0-9_,]+)/.exec(match[1] ?? '')?.[1]?.split(',').filter((n) => n !== '') ?? [];
  return [...new Set(['SOURCE_DATE_EPOCH', ...declared])].sort();
}

function sha256Hex(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The build cache in one registry repository. */
export class RemoteCache {
  readonly reference: RegistryReference;
  readonly counts: RemoteCacheCounts = { hits: 0, misses: 0, stored: 0, failedUploads: 0 };
  private readonly options: RemoteCacheOptions;
  private readonly client: RegistryClient;
  private readonly pending = new Set<Promise<void>>();
  private readonly ruleEnv = new Map<string, string[] | undefined>();
  /** Set when the registry could not be reached: the rest of the build goes without the cache. */
  private isDisabled = false;

  constructor(options: RemoteCacheOptions) {
    this.options = options;
    this.reference = parseReference(options.reference);
    this.client = new RegistryClient(this.reference.host, {
      env: options.env,
      label: `${this.reference.host}/${this.reference.repository}`,
      ...(options.isInsecure === undefined ? {} : { isInsecure: options.isInsecure }),
    });
  }

  private get repository(): string {
    return this.reference.repository;
  }

  private cacheableEnv(rule: string): string[] | undefined {
    if (!this.ruleEnv.has(rule)) {
      let text = '';
      try {
        text = readFileSync(resolve(this.options.root, rule), 'utf8');
      } catch {
        text = '';
      }
      this.ruleEnv.set(rule, cacheableEnvOf(text));
    }
    return this.ruleEnv.get(rule);
  }

  /** The rule key, or undefined for a rule that is not cacheable. */
  private ruleKey(target: string, rule: string): string | undefined {
    const env = this.cacheableEnv(rule);
    if (env === undefined) return undefined;
    const ruleBytes = readFileSync(resolve(this.options.root, rule));
    return sha256Hex(
      JSON.stringify({
        format: entryFormat,
        tool: this.options.toolVersion,
        target,
        rule,
        ruleSha256: sha256Hex(ruleBytes),
        platform: this.options.platform,
        env: env.map((name) => [name, this.options.env[name] ?? null]),
      }),
    );
  }

  private static depsKey(ruleKey: string, deps: readonly EntryDependency[]): string {
    return sha256Hex(JSON.stringify({ ruleKey, deps: deps.map((d) => [d.path, d.identity]) }));
  }

  /** Fetches and checks an entry by tag; undefined when the tag does not exist. */
  private async readEntry(tag: string): Promise<Entry | undefined> {
    const manifest = await this.client.getManifest(this.repository, tag, [manifestType]);
    if (manifest === undefined) return undefined;
    const subject = `${this.reference.host}/${this.repository}:${tag}`;
    let parsed: { config?: { mediaType?: string; digest?: string; size?: number }; layers?: { mediaType?: string; digest?: string; size?: number }[] };
    try {
      parsed = JSON.parse(manifest.bytes.toString('utf8')) as typeof parsed;
    } catch (error) {
      throw badEntry(subject, 'its manifest is not JSON', error);
    }
    const config = (parsed as typeof parsed | null)?.config;
    if (config?.mediaType !== cacheMediaTypes.entry || typeof config.digest !== 'string') {
      throw badEntry(subject, `its config is ${config?.mediaType ?? 'missing'}, not ${cacheMediaTypes.entry}`);
    }
    const scratch = await this.fetchToBuffer(config.digest, config.size);
    let entry: Entry;
    try {
      entry = JSON.parse(scratch.toString('utf8')) as Entry;
    } catch (error) {
      throw badEntry(subject, 'its entry is not JSON', error);
    }
    // The entry is someone else's data: check its shape before reading any field of it.
    const output = (entry as Partial<Entry> | null)?.output;
    if (typeof entry !== 'object' || entry === null || typeof output !== 'object' || output === null
      || typeof output.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(output.digest) || !Number.isSafeInteger(output.size) || output.size < 0
      || typeof entry.target !== 'string' || typeof entry.rule !== 'string' || typeof entry.depsKey !== 'string' || !Array.isArray(entry.deps)) {
      throw badEntry(subject, 'its entry lacks a field or has one of the wrong type');
    }
    const layer = Array.isArray(parsed?.layers) ? parsed.layers[0] : undefined;
    if (entry.format !== entryFormat || layer?.digest !== entry.output.digest || layer.mediaType !== cacheMediaTypes.output) {
      throw badEntry(subject, 'its manifest and its entry disagree about the output');
    }
    if (entry.platform !== this.options.platform) {
      throw new RedoError('ERR_REMOTE_CACHE_ENTRY', `redo: "${subject}": cache entry for another platform`, {
        details: [`wanted: ${this.options.platform}`, `found:  ${entry.platform}`, `target: ${entry.target}`, 'nothing was recorded or used'],
        hint: 'something stored this entry under a key for this platform; delete the tag from the cache repository',
      });
    }
    return entry;
  }

  private async fetchToBuffer(digest: string, size: number | undefined): Promise<Buffer> {
    // An entry is small: without a size it is bounded like a manifest, not like a blob.
    if (size !== undefined && size > MAX_MANIFEST_BYTES) {
      throw badEntry(`${this.reference.host}/${this.repository}@${digest}`, `its entry claims ${size} bytes; entries are at most ${MAX_MANIFEST_BYTES}`);
    }
    return withScratchFolder('redo-ts-cache-entry-', async (dir) => {
      const got = await this.client.fetchBlob(this.repository, digest, `${dir}/blob`, size ?? MAX_MANIFEST_BYTES);
      if (got === undefined) throw badEntry(`${this.reference.host}/${this.repository}@${digest}`, 'the registry lacks the blob');
      return readFileSync(`${dir}/blob`);
    });
  }

  /**
   * The engine's lookUp. What is hashed into the `deps-` key comes from this machine:
   * the dependencies it recorded for the target when it has built it before, else the
   * `rule-` entry's list, taken only as a proposal that is refused whole (a miss, with a
   * warning) unless every item is harmless to look at here: an environment variable the
   * local rule declares in its `env=` (already in the rule key), a visible source file of
   * the project (or under /usr), or a target whose own rule is cacheable; so an entry can
   * neither make another rule run nor put an undeclared variable's value, or a hidden
   * file's content, into a tag. Their identities are computed
   * locally (the engine brings them up to date), the `deps-` entry is fetched, and it is
   * accepted only when it was filed under that key for this target and rule; then its
   * output is fetched into `outputPath`, checked against its digest and size. The
   * dependencies returned are ours, never the entry's.
   */
  async lookUp(request: {
    target: string;
    rule: string;
    outputPath: string;
    recordedDeps?: readonly { path: string; mode: 'ifchange' | 'ifcreate' }[];
    ruleFor(path: string): string | undefined;
    identify(deps: readonly { path: string; mode: 'ifchange' | 'ifcreate' }[]): Promise<(string | null)[] | undefined>;
  }): Promise<{ deps: EntryDependency[] } | undefined> {
    if (this.isDisabled) return undefined;
    const ruleKey = this.ruleKey(request.target, request.rule);
    if (ruleKey === undefined) return undefined;
    let proposal = request.recordedDeps;
    if (proposal === undefined) {
      let latest: Entry | undefined;
      try {
        latest = await this.readEntry(`rule-${ruleKey}`);
      } catch (error) {
        // An unreachable cache costs speed, not correctness: build locally and say so once.
        if (!(error instanceof RedoError) || error.code !== 'ERR_REGISTRY_UNREACHABLE') throw error;
        this.isDisabled = true;
        this.options.onWarning(`${error.render()}\n  the build goes on without the remote cache`);
        return this.miss();
      }
      if (latest === undefined) return this.miss();
      const refusal = this.refusalOf(latest, request);
      if (refusal !== undefined) {
        this.options.onWarning(`redo: "${this.reference.host}/${this.repository}:rule-${ruleKey}": cache entry for "${request.target}" refused\n  ${refusal}\n  nothing it lists was built or hashed; the rule runs\n  hint: someone with push rights to the cache stored it; delete the tag`);
        return this.miss();
      }
      proposal = latest.deps.map((d) => ({ path: d.path, mode: d.identity === null ? 'ifcreate' as const : 'ifchange' as const }));
    }
    const identities = await request.identify(proposal);
    if (identities === undefined) return this.miss();
    const deps = proposal.map((d, i) => ({ path: d.path, identity: identities[i] ?? null }));
    const depsKey = RemoteCache.depsKey(ruleKey, deps);
    const entry = await this.readEntry(`deps-${depsKey}`);
    if (entry === undefined || entry.depsKey !== depsKey || entry.target !== request.target || entry.rule !== request.rule) return this.miss();
    const size = await this.client.fetchBlob(this.repository, entry.output.digest, request.outputPath, entry.output.size);
    if (size === undefined) return this.miss();
    this.counts.hits += 1;
    return { deps };
  }

  /**
   * Why an entry's dependency list may not be acted on here, or undefined when every item
   * is harmless: a `$NAME` the local rule declares, a source, or a target with a cacheable rule.
   */
  private refusalOf(entry: Entry, request: { rule: string; ruleFor(path: string): string | undefined }): string | undefined {
    if (!Array.isArray(entry.deps)) return 'it has no dependency list';
    const declared = this.cacheableEnv(request.rule) ?? [];
    for (const dep of entry.deps) {
      if (typeof dep?.path !== 'string' || (dep.identity !== null && typeof dep.identity !== 'string')) return 'its dependency list is malformed';
      if (dep.path.startsWith('$')) {
        if (!declared.includes(dep.path.slice(1))) {
          return `it lists the environment variable ${dep.path}, which "${request.rule}" does not declare (env=${declared.join(',')})`;
        }
        continue;
      }
      // A file's content hash in a tag is an oracle too (a short secret in `.env` can be
      // guessed offline): only the project's visible files, and the system's /usr.
      if (isAbsolute(dep.path) ? !dep.path.startsWith('/usr/') : dep.path.split('/').some((part) => part.startsWith('.'))) {
        return `it lists "${dep.path}", ${isAbsolute(dep.path) ? 'a file outside the project' : 'a hidden file'}: its content would be hashed into the tag looked up`;
      }
      const rule = request.ruleFor(dep.path);
      if (rule !== undefined && this.cacheableEnv(rule) === undefined) {
        return `it lists "${dep.path}", whose rule "${rule}" is not cacheable: looking it up would run that rule`;
      }
    }
    return undefined;
  }

  private miss(): undefined {
    this.counts.misses += 1;
    return undefined;
  }

  /** The engine's offer: uploads the output and its entry in the background (unless read-only). */
  offer(built: { target: string; rule: string; outputPath: string; outputSha256Hex: string; deps: EntryDependency[] }): void {
    // A folder output (identity "dir") has no single blob to store.
    if (this.options.isReadOnly || this.isDisabled || !/^[0-9a-f]{64}$/.test(built.outputSha256Hex)) return;
    const ruleKey = this.ruleKey(built.target, built.rule);
    if (ruleKey === undefined) return;
    const work = this.store(ruleKey, built).catch((error: unknown) => {
      this.counts.failedUploads += 1;
      const text = error instanceof RedoError ? error.render() : String(error);
      this.options.onWarning(`redo: "${built.target}": not stored in the remote cache\n  ${text.split('\n').join('\n  ')}`);
    });
    this.pending.add(work);
    void work.finally(() => this.pending.delete(work));
  }

  private async store(ruleKey: string, built: { target: string; rule: string; outputPath: string; outputSha256Hex: string; deps: EntryDependency[] }): Promise<void> {
    // Streamed from the target file; the registry checks the bytes against the digest
    // the engine computed, so a file changed meanwhile is refused, not stored.
    const outputDigest = `sha256:${built.outputSha256Hex}`;
    const sizeBytes = statSync(built.outputPath).size;
    const depsKey = RemoteCache.depsKey(ruleKey, built.deps);
    const entry: Entry = {
      format: entryFormat,
      target: built.target,
      rule: built.rule,
      platform: this.options.platform,
      ruleKey,
      depsKey,
      deps: built.deps,
      output: { digest: outputDigest, size: sizeBytes },
    };
    const entryBytes = Buffer.from(JSON.stringify(entry));
    const entryDigest = `sha256:${sha256Hex(entryBytes)}`;
    await this.client.pushBlob(this.repository, outputDigest, { sizeBytes, open: () => createReadStream(built.outputPath) });
    await this.client.pushBlob(this.repository, entryDigest, entryBytes);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: manifestType,
        config: { mediaType: cacheMediaTypes.entry, digest: entryDigest, size: entryBytes.length },
        layers: [{ mediaType: cacheMediaTypes.output, digest: outputDigest, size: sizeBytes, annotations: { 'org.opencontainers.image.title': built.target } }],
        annotations: { 'dev.redo-ts.cache.target': built.target },
      }),
    );
    await this.client.putManifest(this.repository, `deps-${depsKey}`, manifestType, manifest);
    await this.client.putManifest(this.repository, `rule-${ruleKey}`, manifestType, manifest);
    this.counts.stored += 1;
  }

  /** Waits for every upload started so far, then closes connections. */
  async finish(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
    this.client.close();
  }
}

function badEntry(subject: string, problem: string, cause?: unknown): RedoError {
  return new RedoError('ERR_REMOTE_CACHE_ENTRY', `redo: "${subject}": unusable cache entry`, {
    details: [problem, 'nothing was recorded or used'],
    hint: 'delete the tag from the cache repository; the next build stores a good one',
    ...(cause === undefined ? {} : { cause }),
  });
}

