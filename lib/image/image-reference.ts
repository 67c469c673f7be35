/** What an image may be called and configured with: the distribution reference grammar and the OCI config value rules. */

/*
 * Image references (distribution reference grammar, which the OCI distribution spec
 * agrees with for repository names and tags):
 *
 *     reference        := name ":" tag                  (a RepoTag needs its tag)
 *     name             := [domain "/"] path             at most 255 characters
 *     domain           := host [":" port-number]        the first component is a domain
 *                                                       when it holds "." or ":" or is "localhost"
 *     host             := domain-component ("." domain-component)* | "[" IPv6 "]"
 *     domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *     path             := path-component ("/" path-component)*
 *     path-component   := [a-z0-9]+ (separator [a-z0-9]+)*
 *     separator        := [_.] | "__" | "-"+
 *     tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 */
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[_.]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const MAX_NAME_LENGTH = 255;

/**
 * Why `reference` is not a valid `name:tag` image reference, or undefined when it is.
 * Pure.
 */
export function referenceProblem(reference: string): string | undefined {
  const slash = reference.lastIndexOf('/');
  const colon = reference.lastIndexOf(':');
  if (reference.includes('@')) return 'a tag names an image by name:tag, not by digest';
  if (colon <= slash) return 'wanted NAME:TAG (for example localhost/app:1.0), found no tag';
  const name = reference.slice(0, colon);
  const tag = reference.slice(colon + 1);
  if (!TAG.test(tag)) return `tag "${tag}" is not 1-128 of A-Z a-z 0-9 _ . - (not starting with . or -)`;
  if (name.length > MAX_NAME_LENGTH) return `name is ${name.length} characters, over ${MAX_NAME_LENGTH}`;
  const parts = name.split('/');
  const first = parts[0]!;
  const hasDomain = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasDomain && !DOMAIN.test(first)) return `registry host "${first}" is not HOST[:PORT]`;
  for (const part of hasDomain ? parts.slice(1) : parts) {
    if (!PATH_COMPONENT.test(part)) {
      return `name component "${part}" is not lower-case letters and digits joined by . _ __ or -`;
    }
  }
  return undefined;
}

/** CPU architectures an OCI config may name (Go's GOARCH values, as the image spec says). */
export const architectures = ['386', 'amd64', 'arm', 'arm64', 'loong64', 'mips', 'mips64', 'mips64le', 'mipsle', 'ppc64', 'ppc64le', 'riscv64', 's390x', 'wasm'];
/** Operating systems an OCI config may name (Go's GOOS values). */
export const operatingSystems = ['aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'illumos', 'ios', 'js', 'linux', 'netbsd', 'openbsd', 'plan9', 'solaris', 'wasip1', 'windows'];

/** Why `entry` is not a `NAME=VALUE` environment entry, or undefined. Pure. */
export function envProblem(entry: string): string | undefined {
  const equals = entry.indexOf('=');
  if (equals === -1) return `"${entry}" is not NAME=VALUE`;
  const name = entry.slice(0, equals);
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(name)) return `"${entry}": the name "${name}" is not letters, digits, _ . - (starting with a letter or _)`;
  if (entry.includes('\0')) return `"${name}": the value holds a NUL byte`;
  // An env file, `docker inspect` and many runtimes split the list at newlines.
  if (/[\n\r]/.test(entry)) return `"${name}": the value holds a line break`;
  return undefined;
}

/** Why `port` is not `PORT`, `PORT/tcp`, `PORT/udp` or `PORT/sctp` with PORT 1-65535, or undefined. Pure. */
export function portProblem(port: string): string | undefined {
  const match = /^([1-9][0-9]{0,4})(?:\/(tcp|udp|sctp))?$/.exec(port);
  if (match === null || Number(match[1]) > 65535) return `"${port}" is not PORT[/tcp|/udp|/sctp] with PORT from 1 to 65535`;
  return undefined;
}

/** Why `user` is not `USER`, `UID`, `USER:GROUP` or `UID:GID`, or undefined. Pure. */
export function userProblem(user: string): string | undefined {
  if (!/^[^:\s\0]+(?::[^:\s\0]+)?$/.test(user)) return `"${user}" is not USER or USER:GROUP (names or numbers, no spaces)`;
  return undefined;
}

/** Why `dir` is not an absolute path, or undefined. Pure. */
export function workingDirProblem(dir: string): string | undefined {
  if (!dir.startsWith('/') || dir.includes('\0')) return `"${dir}" is not an absolute path`;
  return undefined;
}
