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

/*
 * What `deb-systemd-helper enable UNIT` does where systemctl is absent (a system that
 * is not running systemd, as in a chroot), for each link of the unit's closure
 * (get_link_closure: the Also= units first, then each Alias=, then each WantedBy= and
 * RequiredBy= folder):
 *   etc/systemd/system/LINK -> UNIT-PATH                    the link, where missing
 *   var/lib/systemd/deb-systemd-helper-enabled/LINK         an empty file: "enabled once"
 *   var/lib/systemd/deb-systemd-helper-enabled/UNIT.dsh-also  every LINK path, one a line
 */
/**
 * Entries that enable `units` as deb-systemd-helper does without systemctl (see above):
 * each unit found as /etc/systemd/system/UNIT, /lib/systemd/system/UNIT or
 * /usr/lib/systemd/system/UNIT (the path the links point to, as the helper names it);
 * `read` returns a unit file's text by image path (undefined when absent). A unit not
 * found is skipped, as the helper fails on it. Folders are not included.
 */
export function systemdEnablementEntries(units: readonly string[], read: (imagePath: string) => string | undefined): TarEntry[] {
  const state = 'var/lib/systemd/deb-systemd-helper-enabled';
  const find = (unit: string): string | undefined => ['/etc/systemd/system/', '/lib/systemd/system/', '/usr/lib/systemd/system/'].map((dir) => `${dir}${unit}`).find((path) => read(path) !== undefined);
  const closure = (unit: string, path: string, visited: string[]): Array<{ link: string; target: string }> => {
    const links: Array<{ link: string; target: string }> = [];
    const wants: string[] = [];
    let wanted = unit;
    const unquote = (value: string): string => value.replace(/^(["'])(.*)\1$/, '$2');
    for (const line of read(path)!.split('\n')) {
      const wantedBy = /^\s*(WantedBy|RequiredBy)=(.+)$/i.exec(line);
      if (wantedBy !== null) for (const value of wantedBy[2]!.trim().split(/\s+/)) wants.push(`/etc/systemd/system/${unquote(value)}${wantedBy[1] === 'WantedBy' ? '.wants' : '.requires'}/`);
      const also = /^\s*Also=(.+)$/i.exec(line);
      if (also !== null) {
        for (const value of also[1]!.trim().split(/\s+/).map(unquote)) {
          const alsoPath = find(value);
          if (value === unit || visited.includes(value) || alsoPath === undefined) continue;
          visited.push(value);
          links.push(...closure(value, alsoPath, visited));
        }
      }
      const alias = /^\s*Alias=(.+)$/i.exec(line);
      if (alias !== null) for (const value of alias[1]!.trim().split(/\s+/).map(unquote)) if (value !== unit) links.push({ link: `/etc/systemd/system/${value}`, target: path });
      const instance = /^\s*DefaultInstance=\s*(["']?)(.+)\1\s*$/i.exec(line);
      if (instance !== null) wanted = unit.replace(/^(.*@)(\.\w+)$/, `$1${instance[2]}$2`);
    }
    for (const dir of wants) links.push({ link: `${dir}${wanted}`, target: path });
    return links;
  };
  const entries = new Map<string, TarEntry>();
  const alsoFiles = new Map<string, string[]>();
  for (const unit of units) {
    const path = find(unit);
    if (path === undefined) continue;
    const listed = alsoFiles.get(unit) ?? [];
    for (const { link, target } of closure(unit, path, [])) {
      if (!listed.includes(link)) listed.push(link);
      const stateFile = `${state}/${link.slice('/etc/systemd/system/'.length)}`;
      if (entries.has(stateFile)) continue;
      entries.set(link.slice(1), symlink(link.slice(1), target));
      entries.set(stateFile, file(stateFile, ''));
    }
    alsoFiles.set(unit, listed);
  }
  for (const [unit, links] of alsoFiles) if (links.length > 0) entries.set(`${state}/${unit}.dsh-also`, file(`${state}/${unit}.dsh-also`, links.map((link) => `${link}\n`).join('')));
  return [...entries.values()];
}

/**
 * What `update-rc.d NAME defaults` (or `defaults-disabled`) does where insserv is not
 * installed (init-system-helpers' make_sysv_links): unless some etc/rc?.d/[SK]NNNAME link
 * exists already, a link `etc/rcL.d/S01NAME -> ../init.d/NAME` for each level of the
 * script's LSB `Default-Start` (`K01` with defaults-disabled) and `etc/rcL.d/K01NAME` for
 * each of `Default-Stop`. `calls` are the update-rc.d argv tails (`['nginx', 'defaults']`);
 * `read` returns a file's text by image path; `hasLink(level, name)` whether the image
 * already has such a link. A script that is missing is skipped (update-rc.d fails on it).
 */
export function sysvInitLinkEntries(calls: ReadonlyArray<readonly string[]>, read: (imagePath: string) => string | undefined, hasLink: (name: string) => boolean): TarEntry[] {
  const entries = new Map<string, TarEntry>();
  for (const args of calls) {
    const words = args.filter((arg) => !arg.startsWith('-'));
    const [name, action] = words;
    if (name === undefined || (action !== 'defaults' && action !== 'defaults-disabled')) continue;
    if (hasLink(name) || [...entries.keys()].some((path) => new RegExp(`^etc/rc.\\.d/[SK][0-9][0-9]${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`).test(path))) continue;
    const text = read(`/etc/init.d/${name}`);
    if (text === undefined) continue;
    let start: string[] = [];
    let stop: string[] = [];
    let isInside = false;
    for (const line of text.split('\n')) {
      if (/^### BEGIN INIT INFO\s*$/.test(line)) isInside = true;
      else if (/^### END INIT INFO\s*$/.test(line)) break;
      else if (isInside) {
        const found = /^# Default-(Start|Stop):\s*(\S?.*)$/.exec(line);
        if (found?.[1] === 'Start') start = found[2]!.trim().split(/\s+/).filter((level) => level !== '');
        if (found?.[1] === 'Stop') stop = found[2]!.trim().split(/\s+/).filter((level) => level !== '');
      }
    }
    for (const level of start) entries.set(`etc/rc${level}.d/${action === 'defaults' ? 'S' : 'K'}01${name}`, symlink(`etc/rc${level}.d/${action === 'defaults' ? 'S' : 'K'}01${name}`, `../init.d/${name}`));
    for (const level of stop) entries.set(`etc/rc${level}.d/K01${name}`, symlink(`etc/rc${level}.d/K01${name}`, `../init.d/${name}`));
  }
  return [...entries.values()];
}
