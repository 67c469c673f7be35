/** RedoError, the catalog of stable ERR_* codes, and the exit code each maps to. */

/**
 * Every error code redo-ts can raise, alphabetical, one line each.
 * Codes are stable: wording of messages may change, codes may not.
 * Add new codes here, in order, with their exit status in `exitCodes`.
 */
export const errorCatalog = {
  ERR_ATTESTATION: 'an attestation or signature attached to an image is malformed, or does not verify with the given key',
  ERR_AUDIT_FINDINGS: 'an image asked to be audited at build time (`audit: true`) holds findings it does not allow',
  ERR_BUILD_ENVIRONMENT: 'a spec with build steps has no build environment (no build-environment.spec.yaml found, or it has build steps itself)',
  ERR_BUILD_ESCAPE: "a spec's source copy, unpack or patch would write outside its build folder through a symlink",
  ERR_BUILD_NETWORK: 'a build step reached for the network, which the sandbox does not have (loopback only)',
  ERR_BUILD_TOOL_MISSING: 'a build step ran a command its build environment does not have (add the package that provides it)',
  ERR_CACHE_DAMAGED: 'a file in the download cache does not match the hash it is stored under; it was dropped (offline, or its origin could not give it again)',
  ERR_CPIO_FIELD: 'a number (size, uid, mode, ...) does not fit the 8 hex digits of a cpio newc header',
  ERR_CYCLE: 'a target depends on itself; the message prints the whole chain',
  ERR_DEBIAN_CONFLICT: 'two packages of a resolved package list conflict with (or break) each other',
  ERR_DEBIAN_INDEX: 'a Debian package index or Release file is missing, unsigned by the keyring, or does not match its checksum',
  ERR_DEBIAN_LOCK_INCOMPLETE: 'a Debian lock file is not closed under its packages\' dependencies (a package block is missing)',
  ERR_DEBIAN_LOCK_INVALID: 'a Debian lock file (NAME.lock.yaml) cannot be parsed',
  ERR_DEBIAN_LOCK_MISSING: 'a spec with a package list has no lock file yet (run `redo-ts lock`)',
  ERR_DEBIAN_LOCK_STALE: 'a lock file no longer matches its spec\'s package list (run `redo-ts lock`)',
  ERR_DEBIAN_PLATFORM_VERSIONS: 'the platforms of a multi-arch image lock a Debian package at different versions (not allowed by name)',
  ERR_DEBIAN_UNKNOWN_PACKAGE: 'a package list names a package no index knows',
  ERR_DEBIAN_UNSATISFIABLE: 'a package list or a dependency cannot be satisfied by any indexed version (the chain is named)',
  ERR_DEB_CONTROL_MISMATCH: 'a .deb\'s own control fields (Package, Version, Architecture) differ from what the spec or lock names',
  ERR_DEB_FORMAT: 'a .deb file is not an ar archive with a control and a data member',
  ERR_DEB_UNSAFE_PATH: 'a package data archive holds an absolute path or one with ".."',
  ERR_DEPENDENCY_FAILED: 'a target was not built because one of its dependencies failed',
  ERR_ELF_NEEDED: 'an ELF file in an image needs a shared library (or loader) that no layer of the image provides',
  ERR_FRAGMENT_CONFLICT: 'two specs (or two sources of one spec) deliver the same path',
  ERR_IFCREATE_EXISTS: 'redo-ifcreate was given a file that already exists',
  ERR_IMAGE_DESCRIPTION: 'an image description (NAME.yaml for NAME.tar) is unreadable or invalid',
  ERR_IMAGE_STORE: 'a blob an image view or push needs is missing from or damaged in the image store (.redo/store), or an image record is unreadable',
  ERR_INTEGRITY_MISMATCH: 'a source does not match the integrity pinned in its spec',
  ERR_INTEGRITY_MISSING: 'a spec source has no integrity pin yet (run `redo-ts pin`)',
  ERR_INTERNAL: 'a bug in redo-ts itself; the message asks for a report',
  ERR_LAYER_CONFLICT: 'two layer fragments or entries deliver one path with different content or metadata',
  ERR_LAYER_LIST: 'a layer list (NAME.layer for NAME.layer.tar) is missing or names no input',
  ERR_LAYER_PATH: 'a layer member path is empty or contains ".." or a NUL byte',
  ERR_LAYER_READ: 'a file going into a layer could not be read, or changed while it was read',
  ERR_LAYER_SPECIAL_FILE: 'a rootfs holds a socket, fifo or device that its metadata does not declare',
  ERR_LAYER_UNREPRESENTABLE: 'a layer member cannot be written as tar (a name or link target that is not UTF-8, a device number over 262143)',
  ERR_LOCK_HELD: 'another process has held the lock of a target for a while (a notice; the build waits)',
  ERR_METADATA_INVALID: 'a metadata table line is malformed (file:line: problem)',
  ERR_METADATA_UNMATCHED: 'a metadata table names a path that does not exist in the rootfs',
  ERR_NOT_AN_IMAGE: 'a command that reads an image was given a target that has no image description, or whose layers are not built',
  ERR_NOT_IN_RULE: 'a command that only makes sense inside a running rule was run outside one',
  ERR_NO_RULE: 'no .do rule builds the target and no such source file exists',
  ERR_NPM_LOCK_INVALID: 'a package-lock.json a spec names cannot be read, is not lockfileVersion 2 or 3, or pins a package without a registry integrity',
  ERR_PATH_NOT_IN_IMAGE: 'a path asked about is in none of the layers of an image',
  ERR_PYPI_REQUIREMENTS_INVALID: 'a requirements file a spec names cannot be read or uses what redo-ts does not read (-r, -e, URL requirements)',
  ERR_PYPI_UNHASHED: 'a requirement of a spec\'s requirements file is not pinned to one version with --hash lines',
  ERR_REGISTRY_AUTH: 'a registry (or its token server) refused the credentials, or found none; the message names the files tried',
  ERR_REGISTRY_DIGEST: 'bytes a registry sent do not match their digest (never recorded or used)',
  ERR_REGISTRY_LAYOUT: 'an OCI layout archive to push is unreadable, lacks a blob, or holds several images and none matches the tag',
  ERR_REGISTRY_REFERENCE: 'a registry reference is malformed, or a tag is given where a digest is required',
  ERR_REGISTRY_REJECTED: 'a registry answered a request with an unexpected status (e.g. it rejected a manifest)',
  ERR_REGISTRY_UNREACHABLE: 'a registry could not be reached (connection refused, DNS, TLS)',
  ERR_REMOTE_CACHE_ENTRY: 'a remote build cache entry is malformed or for another platform; nothing from it is used',
  ERR_RULE_AMBIGUOUS: 'both NAME.do and NAME.do.ts exist for one lookup step',
  ERR_RULE_BOTH_OUTPUTS: 'a rule wrote both stdout and $3; it must use exactly one',
  ERR_RULE_FAILED: 'a rule exited non-zero, was killed, or (TypeScript) threw',
  ERR_RULE_MISSING: 'a target is out of date but no rule builds it any more; its old output is used (a warning; an error under --strict)',
  ERR_RULE_WROTE_TARGET: 'a rule modified $1 directly instead of writing $3 or stdout',
  ERR_SANDBOX_UNAVAILABLE: 'build steps cannot be sandboxed here: no bwrap or unshare, or the kernel refuses unprivileged user namespaces',
  ERR_SIGNING_KEY: 'a signing or public key file is missing, unreadable, not ECDSA P-256, or encrypted without the right passphrase',
  ERR_SOURCE_DATE_EPOCH: 'SOURCE_DATE_EPOCH is set but is not a non-negative integer',
  ERR_SOURCE_FORCED: 'redo (or -f) was asked to rebuild a file that exists but that redo-ts never built; sources are never overwritten',
  ERR_SOURCE_HAS_RULE: 'a file a rule could build exists but redo-ts never built it; it is used as a source (a warning)',
  ERR_SOURCE_SIZE: "a download passed its source's `size` or the download limit, or ended short of its `size`",
  ERR_SOURCE_UNREACHABLE: 'a source could not be fetched and the cache has no copy',
  ERR_SPEC_BUILD_FAILED: 'a build step of a spec exited with a non-zero status',
  ERR_SPEC_FILES_UNMATCHED: 'a `files` entry of a spec matched nothing the build produced',
  ERR_SPEC_INVALID: 'a target spec is malformed (file:line: field: problem)',
  ERR_SPEC_NOT_FOUND: 'a spec file, or a spec named in requires/build-requires, does not exist',
  ERR_SPEC_UNKNOWN_FIELD: 'a target spec has a field the format does not define',
  ERR_STATE_CORRUPT: 'a file under .redo/ cannot be read; the message says what to delete',
  ERR_STATE_TOO_NEW: '.redo/ was written by a newer redo-ts; the message says what to delete',
  ERR_TARGET_EDITED: 'a target was modified by hand since redo-ts built it (a warning; it is not rebuilt)',
  ERR_TARGET_OUTSIDE: 'a target path lies outside the project root or inside .redo/',
  ERR_TAR_MALFORMED: 'an archive is not a readable tar (bad checksum, truncated, bad pax record)',
  ERR_USAGE: 'bad command-line arguments',
  ERR_VERIFY_REBUILD: 'verify could not rebuild the target in its scratch copy',
  ERR_WRITE_FAILED: 'a file could not be written (disk full, read-only project, no permission); the message names it',
} as const;

/** A stable error code from the catalog. */
export type ErrorCode = keyof typeof errorCatalog;

/**
 * Exit status for each code. 0 success, 1 build failure, 2 usage error;
 * rule-contract violations get their own documented codes (see README).
 */
export const exitCodes: Record<ErrorCode, number> = {
  ERR_ATTESTATION: 1,
  ERR_AUDIT_FINDINGS: 1,
  ERR_BUILD_ENVIRONMENT: 1,
  ERR_BUILD_ESCAPE: 1,
  ERR_BUILD_NETWORK: 1,
  ERR_BUILD_TOOL_MISSING: 1,
  ERR_CACHE_DAMAGED: 1,
  ERR_CPIO_FIELD: 1,
  ERR_CYCLE: 1,
  ERR_DEBIAN_CONFLICT: 1,
  ERR_DEBIAN_INDEX: 1,
  ERR_DEBIAN_LOCK_INCOMPLETE: 1,
  ERR_DEBIAN_LOCK_INVALID: 1,
  ERR_DEBIAN_LOCK_MISSING: 1,
  ERR_DEBIAN_LOCK_STALE: 1,
  ERR_DEBIAN_PLATFORM_VERSIONS: 1,
  ERR_DEBIAN_UNKNOWN_PACKAGE: 1,
  ERR_DEBIAN_UNSATISFIABLE: 1,
  ERR_DEB_CONTROL_MISMATCH: 1,
  ERR_DEB_FORMAT: 1,
  ERR_DEB_UNSAFE_PATH: 1,
  ERR_DEPENDENCY_FAILED: 1,
  ERR_ELF_NEEDED: 1,
  ERR_FRAGMENT_CONFLICT: 1,
  ERR_IFCREATE_EXISTS: 1,
  ERR_IMAGE_DESCRIPTION: 1,
  ERR_IMAGE_STORE: 1,
  ERR_INTEGRITY_MISMATCH: 1,
  ERR_INTEGRITY_MISSING: 1,
  ERR_INTERNAL: 70,
  ERR_LAYER_CONFLICT: 1,
  ERR_LAYER_LIST: 1,
  ERR_LAYER_PATH: 1,
  ERR_LAYER_READ: 1,
  ERR_LAYER_SPECIAL_FILE: 1,
  ERR_LAYER_UNREPRESENTABLE: 1,
  ERR_LOCK_HELD: 1,
  ERR_METADATA_INVALID: 1,
  ERR_METADATA_UNMATCHED: 1,
  ERR_NOT_AN_IMAGE: 1,
  ERR_NOT_IN_RULE: 2,
  ERR_NO_RULE: 1,
  ERR_NPM_LOCK_INVALID: 1,
  ERR_PATH_NOT_IN_IMAGE: 1,
  ERR_PYPI_REQUIREMENTS_INVALID: 1,
  ERR_PYPI_UNHASHED: 1,
  ERR_REGISTRY_AUTH: 1,
  ERR_REGISTRY_DIGEST: 1,
  ERR_REGISTRY_LAYOUT: 1,
  ERR_REGISTRY_REFERENCE: 1,
  ERR_REGISTRY_REJECTED: 1,
  ERR_REGISTRY_UNREACHABLE: 1,
  ERR_REMOTE_CACHE_ENTRY: 1,
  ERR_RULE_AMBIGUOUS: 5,
  ERR_RULE_BOTH_OUTPUTS: 4,
  ERR_RULE_FAILED: 1,
  ERR_RULE_MISSING: 1,
  ERR_RULE_WROTE_TARGET: 3,
  ERR_SANDBOX_UNAVAILABLE: 1,
  ERR_SIGNING_KEY: 1,
  ERR_SOURCE_DATE_EPOCH: 1,
  ERR_SOURCE_FORCED: 1,
  ERR_SOURCE_HAS_RULE: 1,
  ERR_SOURCE_SIZE: 1,
  ERR_SOURCE_UNREACHABLE: 1,
  ERR_SPEC_BUILD_FAILED: 1,
  ERR_SPEC_FILES_UNMATCHED: 1,
  ERR_SPEC_INVALID: 1,
  ERR_SPEC_NOT_FOUND: 1,
  ERR_SPEC_UNKNOWN_FIELD: 1,
  ERR_STATE_CORRUPT: 6,
  ERR_STATE_TOO_NEW: 6,
  ERR_TARGET_EDITED: 1,
  ERR_TARGET_OUTSIDE: 2,
  ERR_TAR_MALFORMED: 1,
  ERR_USAGE: 2,
  ERR_VERIFY_REBUILD: 1,
  ERR_WRITE_FAILED: 1,
};

/** Options for a RedoError: the detail lines, an optional hint and the original cause. */
export interface RedoErrorOptions {
  /** Evidence lines (wanted/found, exit status, stderr tail, chain), printed indented. */
  details?: readonly string[];
  /** A next step the user can take, printed as `hint: ...`. */
  hint?: string;
  /** The original exception, kept, never swallowed. */
  cause?: unknown;
}

/**
 * The one error type the library throws for anything a user can cause.
 * `headline` has no trailing period; `details` and `hint` are rendered by the CLI
 * as lines indented two spaces under it.
 */
export class RedoError extends Error {
  readonly code: ErrorCode;
  readonly headline: string;
  readonly details: readonly string[];
  readonly hint: string | undefined;

  constructor(code: ErrorCode, headline: string, options: RedoErrorOptions = {}) {
    super(headline, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RedoError';
    this.code = code;
    this.headline = headline;
    this.details = options.details ?? [];
    this.hint = options.hint;
  }

  /** The exit status the CLI uses for this error. */
  get exitCode(): number {
    return exitCodes[this.code];
  }

  /** The full user-facing text: headline, indented details, hint. No trailing newline. */
  render(): string {
    const lines = [this.headline, ...this.details.map((d) => `  ${d}`)];
    if (this.hint !== undefined) lines.push(`  hint: ${this.hint}`);
    return lines.join('\n');
  }
}

/** A bug in redo-ts, not in the user's project: printed with a stack and the version. */
export class InternalError extends Error {
  override readonly name = 'InternalError';
}

/**
 * True when `error` is a RedoError carrying `code` (or any RedoError if no code given).
 * TypeScript rules share this class with the engine: their `import ... from 'redo-ts'`
 * is resolved to the running library (lib/cli/ts-rules.ts).
 */
export function isRedoError(error: unknown, code?: ErrorCode): error is RedoError {
  return error instanceof RedoError && (code === undefined || error.code === code);
}
