// Keeps a test's copy of a project buildable after a Debian point release removed a
// version one of its `deb:NAME=VERSION` sources pins. The repository's specs pin exact
// versions (targets/busybox.spec.yaml, tutorial chapters); the archive keeps only the
// newest of each package, so on the day a pinned version leaves, apt can no longer fetch
// it and every test building that spec would fail for a reason no change of ours made.
// refreshVanishedDebPins rewrites such a source, in the copy only, to the version the
// machine's apt indexes offer now, with the SHA256 those (signed) indexes give it, and
// warns once per pin, naming the repository file to refresh (see the README's testing
// section). On the days the pins still exist it changes nothing, so the tests check
// exactly the committed files.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** One source refreshDebPins rewrote. */
export interface DebPinRefresh {
  /** The spec, relative to the copy. */
  spec: string;
  /** `deb:NAME=VERSION?arch=ARCH` as committed, and as rewritten. */
  from: string;
  to: string;
  integrity: string;
}

/** What apt's indexes say of one package version. */
interface AptRecord {
  name: string;
  version: string;
  /** SRI sha256 of the .deb, from the index. */
  integrity: string;
  depends: string;
}

const answers = new Map<string, string>();

/**
 * apt-cache's stdout ('' when it fails). With the machine's own configuration each
 * question is asked once per process; with an APT_CONFIG (a test's archive, which the
 * test may change) every time.
 */
function aptCache(args: string[], env: NodeJS.ProcessEnv): string {
  const key = env['APT_CONFIG'] === undefined ? args.join('\0') : '';
  let answer = key === '' ? undefined : answers.get(key);
  if (answer === undefined) {
    try {
      answer = execFileSync('apt-cache', args, { encoding: 'utf8', env: { ...env, LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      answer = '';
    }
    if (key !== '') answers.set(key, answer);
  }
  return answer;
}

/** The record of NAME:ARCH=VERSION in the machine's indexes (the candidate when VERSION is omitted), or undefined. */
export function aptRecord(name: string, arch: string, version: string | undefined, env: NodeJS.ProcessEnv = process.env): AptRecord | undefined {
  let wanted = version;
  if (wanted === undefined) {
    const candidate = /^ {2}Candidate: (\S+)$/m.exec(aptCache(['policy', `${name}:${arch}`], env))?.[1];
    if (candidate === undefined || candidate === '(none)') return undefined;
    wanted = candidate;
  }
  // `apt-cache show` also prints a version only the dpkg status knows (no SHA256): skip those.
  for (const stanza of aptCache(['show', `${name}:${arch}=${wanted}`], env).split(/\n\n+/)) {
    const sha256 = /^SHA256: ([0-9a-f]{64})$/m.exec(stanza)?.[1];
    if (sha256 === undefined || !/^Filename: /m.test(stanza)) continue;
    return { name, version: wanted, integrity: `sha256-${Buffer.from(sha256, 'hex').toString('base64')}`, depends: /^Depends: (.*)$/m.exec(stanza)?.[1] ?? '' };
  }
  return undefined;
}

/**
 * The package that replaces NAME now: NAME's own candidate, or, for a versioned kernel
 * package (`linux-image-6.1.0-50-cloud-amd64`, whose name changes with each ABI bump),
 * the kernel its metapackage (`linux-image-cloud-amd64`) depends on today.
 */
function successorOf(name: string, arch: string, env: NodeJS.ProcessEnv): AptRecord | undefined {
  const own = aptRecord(name, arch, undefined, env);
  if (own !== undefined) return own;
  const flavour = /^linux-image-[0-9][0-9.]*-[0-9]+-(.+)$/.exec(name)?.[1];
  if (flavour === undefined) return undefined;
  const meta = aptRecord(`linux-image-${flavour}`, arch, undefined, env);
  const kernel = meta === undefined ? undefined : /(?:^|, )(linux-image-[0-9][^ ,|]*)/.exec(meta.depends)?.[1];
  return kernel === undefined ? undefined : aptRecord(kernel, arch, undefined, env);
}

function specFiles(dir: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...specFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.spec.yaml')) found.push(path);
  }
  return found.sort();
}

const warned = new Set<string>();

/**
 * For every `deb:NAME=VERSION` source (with `?arch=ARCH` or the machine's architecture)
 * in the `*.spec.yaml` files under the folder `dir` (a test's copy, never the
 * repository): when the machine's apt indexes no longer list that version, rewrites the
 * url to the version they offer now (see successorOf) and its `integrity` line, when it
 * has one, to that version's SHA256 from the index, warning once per pin with the spec
 * named as `from`/PATH (`from`: the repository folder the copy was taken from). Returns
 * what it rewrote (empty while every pin still exists). Throws when apt offers no
 * successor at all.
 */
export function refreshVanishedDebPins(dir: string, env: NodeJS.ProcessEnv = process.env, from = ''): DebPinRefresh[] {
  const machineArch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  const refreshed: DebPinRefresh[] = [];
  for (const path of specFiles(dir)) {
    const text = readFileSync(path, 'utf8');
    const pattern = /^([ \t]*-?[ \t]*url: )deb:([a-z0-9][a-z0-9+.-]*)=([^?\s]+)(\?arch=([a-z0-9-]+))?[ \t]*\n(([ \t]+)integrity: (\S+)\n)?/gm;
    const updated = text.replace(pattern, (whole, lead: string, name: string, version: string, archPart: string | undefined, arch: string | undefined, integrityLine: string | undefined, indent: string | undefined) => {
      const architecture = arch ?? machineArch;
      if (aptRecord(name, architecture, version, env) !== undefined) return whole;
      const now = successorOf(name, architecture, env);
      const spec = relative(dir, path);
      const pinned = `deb:${name}=${version}${archPart ?? ''}`;
      if (now === undefined) throw new Error(`${spec}: ${pinned} is not in the machine's apt indexes, and apt offers no ${name} to replace it (run apt-get update?)`);
      const to = `deb:${now.name}=${now.version}${archPart ?? ''}`;
      refreshed.push({ spec, from: pinned, to, integrity: now.integrity });
      const named = from === '' ? spec : `${from}/${spec}`;
      const key = `${named} ${pinned}`;
      if (!warned.has(key)) {
        warned.add(key);
        console.warn(`${named}: ${pinned} has left the archive; this test's copy uses ${to} (refresh the repository's pin: see "Testing" in README.md)`);
      }
      return `${lead}${to}\n${integrityLine === undefined ? '' : `${indent}integrity: ${now.integrity}\n`}`;
    });
    if (updated !== text) writeFileSync(path, updated);
  }
  return refreshed;
}
