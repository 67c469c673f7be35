/** Registry references (`HOST[:PORT]/REPO[:TAG][@sha256:HEX]`): parsing, and which scheme a host is spoken to with. */

import { RedoError } from '../errors.js';

/**
 * A parsed reference. `host` keeps its port (`127.0.0.1:5000`); `repository` is the
 * path below it (`team/app`); `tag` defaults to "latest" only when no digest is given.
 */
export interface RegistryReference {
  /** The text as the user wrote it, for messages. */
  text: string;
  host: string;
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

// distribution's reference grammar (reference/regexp.go), written out: a path component
// is lowercase alphanumerics joined by ".", "_", "__" or runs of "-".
const componentPattern = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$/;
const tagPattern = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const digestPattern = /^sha256:[0-9a-f]{64}$/;

/**
 * Parses `HOST[:PORT]/REPO[:TAG][@sha256:HEX]`. The first component must be a host
 * (it has a "." or ":" or is "localhost"), as for Docker: redo-ts has no default
 * registry. Throws ERR_REGISTRY_REFERENCE naming the part that is wrong.
 */
export function parseReference(text: string): RegistryReference {
  const fail = (problem: string, hint = 'write HOST[:PORT]/REPOSITORY[:TAG], e.g. registry.example/team/app:1.0 or 127.0.0.1:5000/app'): never => {
    throw new RedoError('ERR_REGISTRY_REFERENCE', `redo: "${text}": not a registry reference`, { details: [problem], hint });
  };
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  if (scheme !== null) fail(`a reference has no scheme: drop "${scheme[0]}" (plain HTTP is for loopback registries, or --insecure)`);
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!digestPattern.test(digest)) fail(`"${digest}" is not a digest (sha256: and 64 lowercase hex digits)`);
  }
  const slash = rest.indexOf('/');
  if (slash === -1) fail('no registry host: the reference has no "/"');
  const host = rest.slice(0, slash);
  let path = rest.slice(slash + 1);
  if (!(host.includes('.') || host.includes(':') || host === 'localhost')) {
    fail(`"${host}" is not a registry host (a host has a "." or a ":port", or is localhost)`);
  }
  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon !== -1) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!tagPattern.test(tag)) fail(`"${tag}" is not a valid tag (letters, digits, "_", "." and "-", at most 128)`);
  }
  if (path === '' || !path.split('/').every((component) => componentPattern.test(component))) {
    fail(`"${path}" is not a repository name (lowercase letters, digits and . _ - between /)`);
  }
  return { text, host, repository: path, tag: tag ?? (digest === undefined ? 'latest' : undefined), digest };
}

/** The host without its port, brackets removed (`[::1]:5000` → `::1`). Pure. */
export function hostName(host: string): string {
  if (host.startsWith('[')) return host.slice(1, host.indexOf(']'));
  const colon = host.lastIndexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}

/**
 * True for a loopback registry (127.0.0.0/8, ::1, localhost), which is spoken to over
 * plain HTTP as Docker and podman do; every other host gets HTTPS unless --insecure.
 */
export function isLoopbackHost(host: string): boolean {
  const name = hostName(host);
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** The reference as text with a tag or digest replaced, e.g. for the pinned form. Pure. */
export function formatReference(reference: Pick<RegistryReference, 'host' | 'repository'>, suffix: { tag?: string; digest?: string }): string {
  const base = `${reference.host}/${reference.repository}`;
  if (suffix.digest !== undefined) return `${base}@${suffix.digest}`;
  return `${base}:${suffix.tag ?? 'latest'}`;
}
