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
export function reportScripts(packages: readonly InstalledPackage[], reproducedBy: ReadonlyArray<{ effect: string; matches: (pkg: string, script: string) => boolean }>): MaintainerScriptReport[] {
  const report: MaintainerScriptReport[] = [];
  for (const pkg of [...packages].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    for (const script of ['preinst', 'postinst']) {
      const bytes = pkg.members.get(script);
      if (bytes === undefined) continue;
      const text = bytes.toString('utf8');
      report.push({ package: pkg.name, script, reproduced: reproducedBy.filter((effect) => effect.matches(pkg.name, text)).map((effect) => effect.effect) });
    }
  }
  return report;
}
