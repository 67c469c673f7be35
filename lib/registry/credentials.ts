/** Registry credentials from the usual files: $REGISTRY_AUTH_FILE, containers auth.json, ~/.docker/config.json. */

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** A user name and password (or token) for one registry, and the file they came from. */
export interface RegistryCredentials {
  username: string;
  password: string;
  /** The file the credentials were read from, named in 401/403 errors. */
  file: string;
}

/** The outcome of a credentials look-up: what was found (if anything) and every file tried. */
export interface CredentialsLookup {
  credentials: RegistryCredentials | undefined;
  /** Files looked at, in order, whether or not they existed. */
  filesTried: string[];
}

/**
 * The credential files, in the order podman and skopeo read them:
 * `$REGISTRY_AUTH_FILE`, `${XDG_RUNTIME_DIR}/containers/auth.json`,
 * `~/.config/containers/auth.json`, then Docker's `~/.docker/config.json`
 * (`$DOCKER_CONFIG/config.json` when set). Pure: reads only `env`.
 */
export function credentialFiles(env: NodeJS.ProcessEnv): string[] {
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir();
  const files: string[] = [];
  if (env.REGISTRY_AUTH_FILE !== undefined && env.REGISTRY_AUTH_FILE !== '') files.push(env.REGISTRY_AUTH_FILE);
  if (env.XDG_RUNTIME_DIR !== undefined && env.XDG_RUNTIME_DIR !== '') files.push(join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
  files.push(join(home, '.config', 'containers', 'auth.json'));
  files.push(join(env.DOCKER_CONFIG !== undefined && env.DOCKER_CONFIG !== '' ? env.DOCKER_CONFIG : join(home, '.docker'), 'config.json'));
  return files;
}

/** `https://host/v1/` or `host/path` → `host`, the way Docker normalises auth keys. */
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//, '').split('/')[0] ?? key;
}

/**
 * Finds credentials for `host` (with port) and `repository`: in each file in turn, an
 * `auths` key naming `host/repository` or a parent path of it wins over a bare `host`
 * key (containers-auth.json); the first file with a match wins. Entries hold
 * `auth` (base64 of `user:password`) or `username`/`password`, or an `identitytoken`
 * (sent as the password of the token request). Unreadable or malformed files are
 * skipped, as podman does. Never throws.
 */
export function findCredentials(host: string, repository: string, env: NodeJS.ProcessEnv): CredentialsLookup {
  const filesTried = credentialFiles(env);
  for (const file of filesTried) {
    let auths: Record<string, unknown>;
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { auths?: unknown };
      if (parsed.auths === null || typeof parsed.auths !== 'object') continue;
      auths = parsed.auths as Record<string, unknown>;
    } catch {
      continue;
    }
    // Most specific first: host/a/b, host/a, host (and Docker's URL-shaped keys).
    const parts = repository.split('/');
    const candidates = parts.map((_, i) => `${host}/${parts.slice(0, parts.length - i).join('/')}`);
    candidates.push(host);
    let entry: unknown;
    for (const candidate of candidates) {
      if (auths[candidate] !== undefined) {
        entry = auths[candidate];
        break;
      }
    }
    if (entry === undefined) {
      const key = Object.keys(auths).find((k) => keyHost(k) === host);
      if (key !== undefined) entry = auths[key];
    }
    const credentials = entry === undefined ? undefined : decodeEntry(entry, file);
    if (credentials !== undefined) return { credentials, filesTried };
  }
  return { credentials: undefined, filesTried };
}

function decodeEntry(entry: unknown, file: string): RegistryCredentials | undefined {
  if (entry === null || typeof entry !== 'object') return undefined;
  const record = entry as Record<string, unknown>;
  if (typeof record.auth === 'string' && record.auth !== '') {
    const text = Buffer.from(record.auth, 'base64').toString('utf8');
    const colon = text.indexOf(':');
    if (colon === -1) return undefined;
    return { username: text.slice(0, colon), password: text.slice(colon + 1), file };
  }
  if (typeof record.username === 'string' && typeof record.password === 'string') {
    return { username: record.username, password: record.password, file };
  }
  if (typeof record.identitytoken === 'string' && record.identitytoken !== '') {
    return { username: '<token>', password: record.identitytoken, file };
  }
  return undefined;
}
