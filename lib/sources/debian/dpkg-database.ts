/** dpkg's database as dpkg itself writes it into a root: var/lib/dpkg/status, info/PKG.list, info/PKG.md5sums, and the rest. */

import type { TarEntry } from '../../image/tar.js';
import { formatParagraph, type ControlMembers, type Paragraph } from './control.js';

/** One package as installed: its control data and which of its paths the image holds. */
export interface InstalledPackage {
  name: string;
  architecture: string;
  /** The control file's fields. */
  control: Paragraph;
  /** The control archive's other members (md5sums, conffiles, postinst, …). */
  members: ControlMembers;
  /** Package paths as the package names them (`/bin/dash`, folders included), archive order, excluded ones left out. */
  listedPaths: string[];
  /** md5 hex of each delivered conffile, by its absolute path. */
  conffileMd5: Map<string, string>;
}

/** dpkg's field order in the status file (lib/dpkg/parse.c fieldinfos); other fields follow in control order. */
const fieldOrder = [
  'Package', 'Essential', 'Protected', 'Status', 'Priority', 'Section', 'Installed-Size', 'Origin', 'Maintainer', 'Bugs',
  'Architecture', 'Multi-Arch', 'Source', 'Version', 'Config-Version', 'Replaces', 'Provides', 'Depends', 'Pre-Depends',
  'Recommends', 'Suggests', 'Breaks', 'Conflicts', 'Enhances', 'Conffiles', 'Description', 'Triggers-Pending', 'Triggers-Awaited',
];

/** The name dpkg gives a package's info files: `NAME:ARCH` for Multi-Arch: same packages, else `NAME`. */
export function infoNameOf(pkg: InstalledPackage): string {
  return pkg.control.get('Multi-Arch') === 'same' ? `${pkg.name}:${pkg.architecture}` : pkg.name;
}

/** The status paragraph of an installed package: control fields plus Status and Conffiles. */
function statusParagraph(pkg: InstalledPackage): Paragraph {
  const fields = new Map(pkg.control);
  fields.set('Status', 'install ok installed');
  const conffiles = (pkg.members.get('conffiles')?.toString('utf8') ?? '').split('\n').map((line) => line.trim()).filter((line) => line.startsWith('/'));
  const kept = conffiles.filter((path) => pkg.conffileMd5.has(path));
  if (kept.length > 0) fields.set('Conffiles', `\n${kept.map((path) => ` ${path} ${pkg.conffileMd5.get(path)!}`).join('\n')}`);
  const ordered: Paragraph = new Map();
  for (const name of fieldOrder) if (fields.has(name)) ordered.set(name, fields.get(name)!);
  for (const [name, value] of fields) if (!ordered.has(name)) ordered.set(name, value);
  return ordered;
}

const file = (path: string, text: string | Buffer, mode = 0o644): TarEntry => {
  const bytes = typeof text === 'string' ? Buffer.from(text) : text;
  return { path: Buffer.from(path), type: 'file', mode, uid: 0, gid: 0, sizeBytes: bytes.length, content: { kind: 'buffer', bytes } };
};
const folder = (path: string): TarEntry => ({ path: Buffer.from(path), type: 'directory', mode: 0o755, uid: 0, gid: 0, sizeBytes: 0 });

/** Control members dpkg keeps in info/ (everything but `control` itself). */
const keptMembers = ['preinst', 'postinst', 'prerm', 'postrm', 'config', 'templates', 'triggers', 'shlibs', 'symbols', 'conffiles'];

/*
 * Layout written (as dpkg 1.21 leaves it after installing the packages):
 *
 *   var/lib/dpkg/status            one paragraph per package, sorted by name, "Status: install ok installed"
 *   var/lib/dpkg/available         empty (dpkg keeps it for dselect)
 *   var/lib/dpkg/diversions        empty
 *   var/lib/dpkg/statoverride      empty
 *   var/lib/dpkg/info/format       "1" (multiarch-aware database)
 *   var/lib/dpkg/info/P.list       "/." then every path of P, one per line
 *   var/lib/dpkg/info/P.md5sums    "MD5HEX  path/without/leading/slash", excluded files left out
 *   var/lib/dpkg/info/P.{conffiles,postinst,…}  the control members, scripts 0755
 *   var/lib/dpkg/{alternatives,parts,triggers,updates}/  folders
 */
/**
 * The tar entries of dpkg's database for `packages`. Deterministic: packages sorted by
 * name, files in the order the packages list them. md5sums lines of files the image
 * does not hold (excluded) are dropped so `dpkg --verify` checks exactly what ships.
 */
export function dpkgDatabaseEntries(packages: readonly InstalledPackage[]): TarEntry[] {
  const sorted = [...packages].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const base = 'var/lib/dpkg';
  const entries: TarEntry[] = [
    folder(base), folder(`${base}/info`), folder(`${base}/alternatives`), folder(`${base}/parts`), folder(`${base}/triggers`), folder(`${base}/updates`),
    file(`${base}/status`, sorted.map((pkg) => formatParagraph(statusParagraph(pkg))).join('\n')),
    file(`${base}/available`, ''),
    file(`${base}/diversions`, ''),
    file(`${base}/statoverride`, ''),
    file(`${base}/info/format`, '1\n'),
  ];
  for (const pkg of sorted) {
    const name = infoNameOf(pkg);
    // Paths are the package's raw name bytes (latin1 strings): written back byte for byte, as dpkg does.
    entries.push(file(`${base}/info/${name}.list`, Buffer.from(`/.\n${pkg.listedPaths.map((path) => `${path}\n`).join('')}`, 'latin1')));
    const listed = new Set(pkg.listedPaths);
    const md5sums = pkg.members.get('md5sums');
    if (md5sums !== undefined) {
      const lines = md5sums.toString('latin1').split('\n').filter((line) => {
        const match = /^[0-9a-f]{32} {2}(.+)$/.exec(line);
        return match !== null && listed.has(`/${match[1]!}`);
      });
      entries.push(file(`${base}/info/${name}.md5sums`, Buffer.from(lines.map((line) => `${line}\n`).join(''), 'latin1')));
    }
    for (const member of keptMembers) {
      const bytes = pkg.members.get(member);
      if (bytes === undefined) continue;
      const isScript = ['preinst', 'postinst', 'prerm', 'postrm', 'config'].includes(member);
      entries.push(file(`${base}/info/${name}.${member}`, bytes, isScript ? 0o755 : 0o644));
    }
  }
  return entries;
}
