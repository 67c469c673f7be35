/**
 * The hook a shared build cache plugs into: look up a target's output by what it was
 * built from, and offer a freshly built one. The engine defines it and knows nothing
 * of where entries live; the CLI hands in an implementation (lib/registry/remote-cache.ts).
 */

/** A dependency as an entry records it: root-relative path and identity; null means "must not exist" (ifcreate). */
export interface CachedDependency {
  path: string;
  identity: string | null;
}

/** What the engine asks before running a rule. */
export interface CacheLookup {
  /** Root-relative target. */
  target: string;
  /** Root-relative rule file that would build it. */
  rule: string;
  /** Absolute path to write a hit's output to (the rule's $3); the engine renames it into place. */
  outputPath: string;
  /**
   * The dependencies this machine recorded when it last built the target, in their
   * recorded order (an environment variable as `$NAME`); absent when it never built it.
   */
  recordedDeps?: readonly { path: string; mode: 'ifchange' | 'ifcreate' }[];
  /** The rule (root-relative) that would build the root-relative `path`, or undefined when none would (a source). */
  ruleFor(path: string): string | undefined;
  /**
   * Brings the listed dependencies up to date, as the rule's own redo-ifchange would, and
   * returns their identities now (null: absent, for an `ifcreate` one); undefined when
   * one of them cannot be built (the lookup is then a miss).
   */
  identify(deps: readonly { path: string; mode: 'ifchange' | 'ifcreate' }[]): Promise<(string | null)[] | undefined>;
}

/** A hit: the output is at `outputPath`, checked; `deps` are what the target now depends on. */
export interface CacheHit {
  deps: CachedDependency[];
}

/** A target a rule just built, offered to the cache. */
export interface CacheOffer {
  target: string;
  rule: string;
  /** Absolute path of the built target. */
  outputPath: string;
  /** sha256 hex of the output's bytes. */
  outputSha256Hex: string;
  deps: CachedDependency[];
}

/**
 * A shared build cache. `lookUp` returns undefined for a miss (or a rule it does not
 * cache) and throws a RedoError when an entry is unusable (bytes that do not match their
 * digest, another platform's entry): the target then fails and nothing is recorded.
 * `offer` must not throw; it may upload in the background (the CLI waits for it).
 */
export interface TargetCache {
  lookUp(request: CacheLookup): Promise<CacheHit | undefined>;
  offer(built: CacheOffer): void;
}
