/** Maintainer-script effects an image needs, done declaratively: users and groups, alternatives, and the report of scripts not run. */

import type { TarEntry } from '../../image/tar.js';
import type { InstalledPackage } from './dpkg-database.js';

/** One maintainer script that was not run, and what of its effect the build reproduced. */
export interface MaintainerScriptReport {
  package: string;
  /** `preinst` or `postinst` (the scripts dpkg runs on a fresh install). */
  script: string;
  /** Effects reproduced declaratively (`alternatives: awk`, `ld.so.cache`, …); empty when none. */
  reproduced: string[];
}

const file = (path: string, text: string, mode = 0o644): TarEntry => {
  const bytes = Buffer.from(text);
  return { path: Buffer.from(path), type: 'file', mode, uid: 0, gid: 0, sizeBytes: bytes.length, content: { kind: 'buffer', bytes } };
};
const symlink = (path: string, target: string): TarEntry => ({ path: Buffer.from(path), type: 'symlink', mode: 0o777, uid: 0, gid: 0, sizeBytes: 0, linkTarget: Buffer.from(target) });

/** One `update-alternatives --install` call found in a postinst. */
export interface AlternativeInstall {
  link: string;
  name: string;
  path: string;
  priority: number;
  slaves: Array<{ link: string; name: string; path: string }>;
  package: string;
}

/**
 * The `update-alternatives --install LINK NAME PATH PRIORITY [--slave LINK NAME PATH]…`
 * calls of a postinst whose arguments are literal (a call using shell variables is not
 * understood and is left to the report). Continuation lines are joined first.
 */
export function parseAlternatives(script: string, pkg: string): AlternativeInstall[] {
  const found: AlternativeInstall[] = [];
  const text = script.replace(/\\\n/g, ' ');
  for (const line of text.split('\n')) {
    const at = line.indexOf('update-alternatives');
    if (at < 0 || !line.includes('--install') || line.includes('$')) continue;
    const words = line.slice(at).replace(/[;|&].*$/, '').trim().split(/\s+/).map((word) => word.replace(/^["']|["']$/g, ''));
    const install = words.indexOf('--install');
    const [link, name, path, priority] = words.slice(install + 1, install + 5);
    if (link === undefined || name === undefined || path === undefined || !/^[0-9]+$/.test(priority ?? '')) continue;
    const slaves = [];
    for (let i = install + 5; i < words.length; i += 1) {
      if (words[i] === '--slave' && words[i + 3] !== undefined) {
        slaves.push({ link: words[i + 1]!, name: words[i + 2]!, path: words[i + 3]! });
        i += 3;
      }
    }
    found.push({ link, name, path, priority: Number(priority), slaves, package: pkg });
  }
  return found;
}

/*
 * update-alternatives' administrative file var/lib/dpkg/alternatives/NAME:
 *   auto                 mode
 *   /usr/bin/awk         master link
 *   nawk                 per slave: name, then link
 *   /usr/bin/nawk
 *   (empty line)
 *   /usr/bin/mawk        per alternative: path, priority, then one line per slave (its path)
 *   5
 *   /usr/bin/mawk
 *   (empty line)
 */
/**
 * Entries that set up each alternative in auto mode as update-alternatives would: the
 * highest priority among the installed choices (ties: the first path in byte order),
 * LINK → /etc/alternatives/NAME → PATH, likewise for slaves whose path `exists`, plus
 * the administrative file. `mapPath` turns an image path into its merged-/usr member.
 */
export function alternativesEntries(installs: readonly AlternativeInstall[], exists: (path: string) => boolean, mapPath: (path: string) => string): TarEntry[] {
  const byName = new Map<string, AlternativeInstall[]>();
  for (const install of installs) {
    if (!exists(install.path)) continue;
    byName.set(install.name, [...(byName.get(install.name) ?? []), install]);
  }
  const entries: TarEntry[] = [];
  for (const name of [...byName.keys()].sort()) {
    const choices = byName.get(name)!.sort((a, b) => b.priority - a.priority || (a.path < b.path ? -1 : 1));
    const best = choices[0]!;
    entries.push(symlink(`etc/alternatives/${name}`, best.path), symlink(mapPath(best.link), `/etc/alternatives/${name}`));
    const slaveNames = [...new Set(choices.flatMap((c) => c.slaves.map((s) => s.name)))].sort();
    const slaveLinks = new Map(choices.flatMap((c) => c.slaves.map((s) => [s.name, s.link] as const)));
    for (const slave of best.slaves) {
      if (!exists(slave.path)) continue;
      entries.push(symlink(`etc/alternatives/${slave.name}`, slave.path), symlink(mapPath(slave.link), `/etc/alternatives/${slave.name}`));
    }
    const lines = ['auto', best.link, ...slaveNames.flatMap((s) => [s, slaveLinks.get(s)!]), ''];
    for (const choice of [...choices].sort((a, b) => (a.path < b.path ? -1 : 1))) {
      lines.push(choice.path, String(choice.priority), ...slaveNames.map((s) => choice.slaves.find((slave) => slave.name === s)?.path ?? ''));
    }
    lines.push('', '');
    entries.push(file(`var/lib/dpkg/alternatives/${name}`, lines.join('\n')));
  }
  return entries;
}

/**
 * /etc/passwd and /etc/group as base-passwd's postinst creates them on a fresh system:
 * copies of its master files. `read` returns a delivered file's bytes by member path.
 */
export function userEntries(read: (path: string) => Buffer | undefined): TarEntry[] {
  const entries: TarEntry[] = [];
  for (const [master, target] of [['usr/share/base-passwd/passwd.master', 'etc/passwd'], ['usr/share/base-passwd/group.master', 'etc/group']] as const) {
    const bytes = read(master);
    if (bytes !== undefined) entries.push(file(target, bytes.toString('utf8')));
  }
  return entries;
}

/**
 * The install-time scripts of `packages` that the build did not run, each with the
 * effects it is known to have and that the build reproduced: `reproducedBy` maps an
 * effect name to a test on the script's text.
 */
export function reportScripts(packages: readonly InstalledPackage[], reproducedBy: ReadonlyArray<{ effect: string; matches: (pkg: string, text: string, script: string) => boolean }>): MaintainerScriptReport[] {
  const report: MaintainerScriptReport[] = [];
  for (const pkg of [...packages].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    for (const script of ['preinst', 'postinst']) {
      const bytes = pkg.members.get(script);
      if (bytes === undefined) continue;
      const text = bytes.toString('utf8');
      report.push({ package: pkg.name, script, reproduced: reproducedBy.filter((effect) => effect.matches(pkg.name, text, script)).map((effect) => effect.effect) });
    }
  }
  return report;
}

const folder = (path: string, mode: number, gid = 0): TarEntry => ({ path: Buffer.from(path), type: 'directory', mode, uid: 0, gid, sizeBytes: 0 });
const emptyFile = (path: string, mode: number, gid: number): TarEntry => ({ path: Buffer.from(path), type: 'file', mode, uid: 0, gid, sizeBytes: 0, content: { kind: 'buffer', bytes: Buffer.alloc(0) } });

/** Debian's fixed group ids (base-passwd's group.master) that base-files' postinst uses. */
const mailGid = 8;
const utmpGid = 43;

/**
 * What base-files' postinst (Debian 12) does on a fresh install, as entries: the default
 * dotfiles and /etc/profile and /etc/motd copied from /usr/share/base-files, the folders
 * it creates (/mnt, /srv, /opt, /media, /var/mail owned by group mail, /run/lock, the
 * /usr/local tree), the /var/run and /var/lock symlinks into /run, /var/spool/mail,
 * /usr/local/man, the empty login records in /var/log, and /etc/dpkg/origins/default.
 * `read` returns a delivered file's bytes and mode by member path; `exists` tells whether a
 * member is delivered. Returns [] when base-files is not in the image.
 */
export function baseFilesEntries(read: (path: string) => { bytes: Buffer; mode: number } | undefined, exists: (path: string) => boolean): TarEntry[] {
  if (!exists('usr/share/base-files')) return [];
  const entries: TarEntry[] = [];
  if (!exists('etc/dpkg/origins/default') && exists('etc/dpkg/origins/debian')) entries.push(symlink('etc/dpkg/origins/default', 'debian'));
  for (const [from, to] of [['dot.profile', 'root/.profile'], ['dot.bashrc', 'root/.bashrc'], ['profile', 'etc/profile'], ['motd', 'etc/motd']] as const) {
    const source = read(`usr/share/base-files/${from}`);
    if (source === undefined || exists(to)) continue;
    entries.push({ path: Buffer.from(to), type: 'file', mode: source.mode, uid: 0, gid: 0, sizeBytes: source.bytes.length, content: { kind: 'buffer', bytes: source.bytes } });
  }
  for (const path of ['mnt', 'srv', 'opt', 'etc/opt', 'var/opt', 'media']) if (!exists(path)) entries.push(folder(path, 0o755));
  if (!exists('var/mail')) entries.push(folder('var/mail', 0o2775, mailGid));
  entries.push(symlink('var/spool/mail', '../mail'));
  if (!exists('run/lock')) entries.push(folder('run/lock', 0o1777));
  // migrate_directory: the packages' /var/run and /var/lock folders become symlinks.
  entries.push(symlink('var/run', '/run'), symlink('var/lock', '/run/lock'));
  for (const path of ['', '/share', '/share/man', '/bin', '/games', '/lib', '/include', '/sbin', '/src', '/etc']) {
    if (!exists(`usr/local${path}`)) entries.push(folder(`usr/local${path}`, 0o755));
  }
  entries.push(symlink('usr/local/man', 'share/man'));
  entries.push(emptyFile('var/log/wtmp', 0o664, utmpGid), emptyFile('var/log/btmp', 0o660, utmpGid), emptyFile('var/log/lastlog', 0o664, utmpGid));
  return entries;
}

/**
 * What tzdata's postinst does without debconf answers: /etc/localtime → the zone file of
 * Etc/UTC and /etc/timezone holding "Etc/UTC". [] without tzdata's zone file.
 */
export function tzdataEntries(exists: (path: string) => boolean): TarEntry[] {
  if (!exists('usr/share/zoneinfo/Etc/UTC')) return [];
  return [symlink('etc/localtime', '/usr/share/zoneinfo/Etc/UTC'), file('etc/timezone', 'Etc/UTC\n')];
}
