/** Licences of Debian packages: debian/copyright files (machine-readable or not) to SPDX licence expressions. */

import { createRequire } from 'node:module';

/** SPDX's licence list (package spdx-license-ids), by lower-case id: a Debian name that is an SPDX id in another case maps to it. */
const spdxIds: ReadonlyMap<string, string> = new Map(
  (createRequire(import.meta.url)('spdx-license-ids') as string[]).map((id) => [id.toLowerCase(), id]),
);

/** A licence expression and the `LicenseRef-` identifiers it uses, with the text that defines each. */
export interface LicenceFinding {
  /** A valid SPDX licence expression, or `NOASSERTION`. */
  expression: string;
  /** Where it came from: the copyright file's path, or why there is none. */
  evidence: string;
  /** Every `LicenseRef-…` in `expression`, with the licence text the copyright file gives (or a pointer to it). */
  refs: Array<{ id: string; name: string; text: string }>;
}

/**
 * Debian's short licence names (copyright-format 1.0, "License specification") and
 * the SPDX identifiers they mean. A trailing `+` means "or any later version".
 * Names outside this table become `LicenseRef-NAME`.
 */
const debianToSpdx: Record<string, string> = {
  'apache-1.0': 'Apache-1.0',
  'apache-1.1': 'Apache-1.1',
  'apache-2.0': 'Apache-2.0',
  'artistic': 'Artistic-1.0-Perl',
  'artistic-1.0': 'Artistic-1.0',
  'artistic-2.0': 'Artistic-2.0',
  'bsd-2-clause': 'BSD-2-Clause',
  'bsd-3-clause': 'BSD-3-Clause',
  'bsd-4-clause': 'BSD-4-Clause',
  'bsd-4-clause-uc': 'BSD-4-Clause-UC',
  'cc0-1.0': 'CC0-1.0',
  'cc0': 'CC0-1.0',
  'curl': 'curl',
  'expat': 'MIT',
  'mit': 'MIT',
  'fsfap': 'FSFAP',
  'fsful': 'FSFUL',
  'fsfullr': 'FSFULLR',
  'isc': 'ISC',
  'mpl-1.1': 'MPL-1.1',
  'mpl-2.0': 'MPL-2.0',
  'openssl': 'OpenSSL',
  'psf-2': 'PSF-2.0',
  'python': 'Python-2.0',
  'x11': 'X11',
  'zlib': 'Zlib',
  'unicode-dfs-2016': 'Unicode-DFS-2016',
  'lppl-1.3c': 'LPPL-1.3c',
  'ofl-1.1': 'OFL-1.1',
  'sil-ofl-1.1': 'OFL-1.1',
  'bsl-1.0': 'BSL-1.0',
  'wtfpl': 'WTFPL',
  'unlicense': 'Unlicense',
  'gpl': 'GPL-1.0-or-later',
  'lgpl': 'LGPL-2.0-or-later',
};

/** Versioned GNU licences: Debian `GPL-2` is SPDX `GPL-2.0-only`, `GPL-2+` is `GPL-2.0-or-later`. */
const gnuVersions: Record<string, Record<string, string>> = {
  gpl: { '1': 'GPL-1.0', '2': 'GPL-2.0', '3': 'GPL-3.0' },
  lgpl: { '2': 'LGPL-2.0', '2.0': 'LGPL-2.0', '2.1': 'LGPL-2.1', '3': 'LGPL-3.0' },
  agpl: { '3': 'AGPL-3.0' },
  gfdl: { '1.1': 'GFDL-1.1', '1.2': 'GFDL-1.2', '1.3': 'GFDL-1.3' },
  'gfdl-niv': { '1.1': 'GFDL-1.1-no-invariants', '1.2': 'GFDL-1.2-no-invariants', '1.3': 'GFDL-1.3-no-invariants' },
};

/** Exceptions written as `NAME with X exception` that SPDX lists. */
const exceptions: Record<string, string> = {
  autoconf: 'Autoconf-exception-2.0',
  'autoconf-3': 'Autoconf-exception-3.0',
  bison: 'Bison-exception-2.2',
  classpath: 'Classpath-exception-2.0',
  gcc: 'GCC-exception-3.1',
  'gcc-3.1': 'GCC-exception-3.1',
  'gcc-2.0': 'GCC-exception-2.0',
  libtool: 'Libtool-exception',
  font: 'Font-exception-2.0',
  openssl: 'OpenSSL-exception',
};

/** `LicenseRef-` plus `name` with every character SPDX does not allow in an idstring replaced by `-`. */
export function licenceRefOf(name: string): string {
  return `LicenseRef-${name.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '') || 'unnamed'}`;
}

/**
 * Maps one Debian licence name (`GPL-2+`, `Expat`, `GPL-2+ with Autoconf exception`)
 * to an SPDX licence (`GPL-2.0-or-later`, `MIT`, `GPL-2.0-or-later WITH
 * Autoconf-exception-2.0`), or to `LicenseRef-NAME` when it is not a name Debian's
 * format and SPDX's list share. Pure.
 */
export function spdxOfDebianLicence(name: string): { expression: string; ref?: string } {
  const withMatch = /^(.*?)\s+with\s+(.+?)\s+exception$/i.exec(name.trim());
  if (withMatch !== null) {
    const base = spdxOfDebianLicence(withMatch[1]!);
    const exception = exceptions[withMatch[2]!.toLowerCase()];
    if (base.ref === undefined && exception !== undefined) return { expression: `${base.expression} WITH ${exception}` };
    const ref = licenceRefOf(name.trim());
    return { expression: ref, ref };
  }
  const lower = name.trim().toLowerCase();
  const direct = debianToSpdx[lower];
  if (direct !== undefined) return { expression: direct };
  const versioned = /^([a-z-]+?)-([0-9.]+)(\+?)$/.exec(lower);
  if (versioned !== null) {
    const family = gnuVersions[versioned[1]!];
    const base = family?.[versioned[2]!] ?? family?.[versioned[2]!.replace(/\.0$/, '')];
    if (base !== undefined) return { expression: `${base}${versioned[3] === '+' ? '-or-later' : '-only'}` };
  }
  // SPDX ids written in another case (BSD-3-clause), or with a short version (Apache-2, MPL-2, CC-BY-SA-3).
  const plus = lower.endsWith('+') ? '+' : '';
  const bare = plus === '' ? lower : lower.slice(0, -1);
  for (const candidate of [bare, `${bare}.0`]) {
    const id = spdxIds.get(candidate);
    // `+` on a non-GNU id is SPDX's own `+` operator ("or later").
    if (id !== undefined) return { expression: `${id}${plus}` };
  }
  const ref = licenceRefOf(name.trim());
  return { expression: ref, ref };
}

/**
 * Turns a Debian `License:` first line (names joined by `and`, `or` and commas, which
 * bind loosest, as copyright-format 1.0 defines) into an SPDX expression, recording
 * each LicenseRef it had to make. Pure.
 */
export function spdxOfDebianExpression(text: string, refs: Set<string>): string {
  const groups = text.split(',').map((group) => group.trim()).filter((group) => group !== '');
  const parts: string[] = [];
  for (const [index, group] of groups.entries()) {
    let body = group;
    let joiner = 'AND';
    const lead = /^(and|or)\s+/i.exec(body);
    if (lead !== null) {
      joiner = lead[1]!.toUpperCase();
      body = body.slice(lead[0].length);
    }
    const tokens = body.split(/\s+(and|or)\s+(?!later\b)/i);
    const pieces: string[] = [];
    for (let at = 0; at < tokens.length; at += 2) {
      const mapped = spdxOfDebianLicence(tokens[at]!);
      if (mapped.ref !== undefined) refs.add(tokens[at]!.trim());
      pieces.push(mapped.expression);
      if (at + 1 < tokens.length) pieces.push(tokens[at + 1]!.toUpperCase());
    }
    const expression = pieces.join(' ');
    const wrapped = groups.length > 1 && pieces.length > 1 ? `(${expression})` : expression;
    parts.push(index === 0 ? wrapped : `${joiner} ${wrapped}`);
  }
  return parts.join(' ');
}

/** Paragraphs of a deb822 text: fields by lower-case name, continuation lines joined with "\n". */
export function parseDeb822(text: string): Array<Map<string, string>> {
  const paragraphs: Array<Map<string, string>> = [];
  let current = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current.size > 0) paragraphs.push(current);
      current = new Map();
      last = undefined;
      continue;
    }
    if (line.startsWith('#')) continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && last !== undefined) {
      current.set(last, `${current.get(last)}\n${line.trim() === '.' ? '' : line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon).trim().toLowerCase();
    current.set(last, line.slice(colon + 1).trim());
  }
  if (current.size > 0) paragraphs.push(current);
  return paragraphs;
}

/** `/usr/share/common-licenses/NAME` (Debian's base-files) and the SPDX family and version each names. */
const commonLicenses: Record<string, { family: string; version?: string; spdx?: string }> = {
  'gpl': { family: 'gpl' },
  'gpl-1': { family: 'gpl', version: '1' },
  'gpl-2': { family: 'gpl', version: '2' },
  'gpl-3': { family: 'gpl', version: '3' },
  'lgpl': { family: 'lgpl' },
  'lgpl-2': { family: 'lgpl', version: '2' },
  'lgpl-2.1': { family: 'lgpl', version: '2.1' },
  'lgpl-3': { family: 'lgpl', version: '3' },
  'gfdl': { family: 'gfdl' },
  'gfdl-1.2': { family: 'gfdl', version: '1.2' },
  'gfdl-1.3': { family: 'gfdl', version: '1.3' },
  'apache-2.0': { family: 'apache', spdx: 'Apache-2.0' },
  'artistic': { family: 'artistic', spdx: 'Artistic-1.0-Perl' },
  'bsd': { family: 'bsd', spdx: 'BSD-3-Clause' },
  'cc0-1.0': { family: 'cc0', spdx: 'CC0-1.0' },
  'mpl-1.1': { family: 'mpl', spdx: 'MPL-1.1' },
  'mpl-2.0': { family: 'mpl', spdx: 'MPL-2.0' },
};

const gnuNames: Array<[RegExp, string]> = [
  [/GNU (?:Lesser|Library) General Public License/gi, 'lgpl'],
  [/GNU Free Documentation License/gi, 'gfdl'],
  [/GNU (?:Affero )?General Public License/gi, 'gpl'],
];

/**
 * What a copyright file that is not machine-readable states, derived as licence
 * scanners do: its `License:` lines, its references to `/usr/share/common-licenses/NAME`,
 * and the GNU licences it names with a version ("GNU Lesser General Public License,
 * version 2.1 (or, at your option, any later version)"); a GNU licence is "or later"
 * when the text grants "any later version" for it, else "only"; a versionless `GPL`
 * reference takes the version the text names, else means any version. The findings, in
 * order of appearance and each once, joined with AND; NOASSERTION when there are none.
 */
function licenceOfFreeText(text: string, path: string): LicenceFinding {
  const flat = text.replace(/\s+/g, ' ');
  const found: Array<{ at: number; family: string; version?: string; isLater: boolean; spdx?: string }> = [];
  for (const [pattern, family] of gnuNames) {
    for (const match of flat.matchAll(pattern)) {
      const after = flat.slice(match.index! + match[0].length, match.index! + match[0].length + 160);
      // "..., as published by the Free Software Foundation; either version 2.1 of the License, or (at your option) any later version."
      const version = /^[^.]*?\b(?:version|v\.?)\s*([0-9](?:\.[0-9])?)\b/i.exec(after);
      if (version === null) continue;
      const rest = after.slice(version.index + version[0].length);
      const isLater = /^[^.]*?\bany later version|^[^.]*?\bor later\b|^\s*\+/i.test(rest);
      found.push({ at: match.index!, family: family === 'gpl' && /Affero/i.test(match[0]) ? 'agpl' : family, version: version[1]!.replace(/\.0$/, ''), isLater });
    }
  }
  for (const match of flat.matchAll(/\/usr\/share\/common-licenses\/([A-Za-z0-9.+-]*[A-Za-z0-9+])/g)) {
    const known = commonLicenses[match[1]!.toLowerCase()];
    if (known !== undefined) found.push({ at: match.index!, ...known, isLater: false });
  }
  const refs = new Set<string>();
  for (const match of text.matchAll(/^License: *(\S.*)$/gm)) {
    found.push({ at: flat.indexOf(match[1]!.trim()), family: 'expression', spdx: spdxOfDebianExpression(match[1]!.trim(), refs), isLater: false });
  }
  found.sort((a, b) => a.at - b.at);
  // A GNU family's versions the text names, and whether it grants any later version.
  const versions = new Map<string, Map<string, boolean>>();
  for (const item of found) {
    if (item.spdx !== undefined || item.version === undefined) continue;
    const byVersion = versions.get(item.family) ?? new Map<string, boolean>();
    byVersion.set(item.version, (byVersion.get(item.version) ?? false) || item.isLater);
    versions.set(item.family, byVersion);
  }
  const expressions: string[] = [];
  const add = (expression: string): void => {
    if (!expressions.includes(expression)) expressions.push(expression);
  };
  for (const item of found) {
    if (item.spdx !== undefined) {
      add(item.spdx);
      continue;
    }
    const named = versions.get(item.family);
    const chosen = item.version !== undefined ? [item.version] : [...(named?.keys() ?? [])];
    if (chosen.length === 0) {
      // `common-licenses/GPL` with no version anywhere: "any version", as Debian's own `GPL` name means.
      const any = spdxOfDebianLicence(`${item.family}-${item.family === 'gfdl' ? '1.1' : item.family === 'lgpl' ? '2' : '1'}+`).expression;
      add(any);
      continue;
    }
    for (const version of chosen) add(spdxOfDebianLicence(`${item.family}-${version}${named?.get(version) === true ? '+' : ''}`).expression);
  }
  const cleaned = expressions;
  if (cleaned.length === 0) return { expression: 'NOASSERTION', evidence: `${path} is not machine-readable (copyright-format 1.0) and names no licence a scanner would derive`, refs: [] };
  const refList = [...refs].sort().map((name) => ({ id: licenceRefOf(name), name, text: `The licence named "${name}" in ${path}.` }))
    .filter((ref, index, all) => all.findIndex((other) => other.id === ref.id) === index);
  const expression = cleaned.length === 1 ? cleaned[0]! : cleaned.map((e) => (/ OR /.test(e) ? `(${e})` : e)).join(' AND ');
  return { expression, evidence: `${path} (not machine-readable: derived from its licence names and common-licenses references)`, refs: refList };
}

/**
 * The licence of a package from its copyright file (`text`, at `path` in the package).
 * A machine-readable file (copyright-format 1.0: a first paragraph with a `Format:`
 * field naming it) gives the distinct `License:` expressions of its `Files:`
 * paragraphs, in file order, joined with AND, each Debian name normalised to its SPDX
 * id. Any other file gives what licenceOfFreeText derives; no file (`text` undefined),
 * or a text naming nothing, gives NOASSERTION. Pure.
 */
export function licenceOfCopyright(text: string | undefined, path: string): LicenceFinding {
  if (text === undefined) return { expression: 'NOASSERTION', evidence: `no ${path} in the package`, refs: [] };
  const paragraphs = parseDeb822(text);
  const format = paragraphs[0]?.get('format');
  if (format === undefined || !/copyright-format\/1\.0/.test(format)) return licenceOfFreeText(text, path);
  const names = new Set<string>();
  const expressions: string[] = [];
  for (const paragraph of paragraphs.slice(1)) {
    if (!paragraph.has('files')) continue;
    const licence = paragraph.get('license')?.split('\n')[0]?.trim();
    if (licence === undefined || licence === '') continue;
    const expression = spdxOfDebianExpression(licence, names);
    // A plain conjunction adds its parts, so `GPL-3+` and `GPL-3+ and ISC` give GPL-3.0-or-later AND ISC.
    const parts = / OR |\(/.test(expression) ? [expression] : expression.split(' AND ');
    for (const part of parts) if (part !== '' && !expressions.includes(part)) expressions.push(part);
  }
  if (expressions.length === 0) return { expression: 'NOASSERTION', evidence: `${path} names no licence in its Files paragraphs`, refs: [] };
  const standalone = new Map<string, string>();
  for (const paragraph of paragraphs.slice(1)) {
    if (paragraph.has('files')) continue;
    const licence = paragraph.get('license');
    if (licence === undefined) continue;
    const [name, ...body] = licence.split('\n');
    standalone.set(name!.trim().toLowerCase(), body.join('\n').trim());
  }
  const refs = [...names].sort().map((name) => ({
    id: licenceRefOf(name),
    name,
    text: standalone.get(name.toLowerCase()) || `The licence named "${name}" in ${path}.`,
  }));
  const dedupedRefs = refs.filter((ref, index) => refs.findIndex((other) => other.id === ref.id) === index);
  const expression = expressions.length === 1 ? expressions[0]! : expressions.map((e) => (/ OR /.test(e) ? `(${e})` : e)).join(' AND ');
  return { expression, evidence: path, refs: dedupedRefs };
}

/** SPDX licence identifiers that npm and PyPI packages commonly declare, beside those of `debianToSpdx`. */
const commonSpdxIds = new Set([
  ...Object.values(debianToSpdx),
  ...Object.values(gnuVersions).flatMap((versions) => Object.values(versions).flatMap((id) => [`${id}-only`, `${id}-or-later`])),
  '0BSD', 'Apache-2.0', 'BlueOak-1.0.0', 'BSD-2-Clause', 'BSD-3-Clause', 'CC-BY-3.0', 'CC-BY-4.0', 'CC0-1.0', 'EPL-2.0',
  'ISC', 'MIT', 'MIT-0', 'MPL-2.0', 'PSF-2.0', 'Python-2.0', 'Unlicense', 'Zlib', 'HPND', 'BSL-1.0', 'WTFPL',
]);

/**
 * The licence a package declares in its own metadata (npm's `license`, a wheel's
 * `License-Expression` or `License`): an SPDX expression of identifiers SPDX lists (the
 * common ones, `AND`/`OR`/`WITH` and parentheses kept); any other text becomes one
 * `LicenseRef-` whose text quotes the declaration; none gives NOASSERTION. `evidence`
 * says where it was read. Pure.
 */
export function licenceOfDeclaration(declared: string | undefined, evidence: string): LicenceFinding {
  const text = declared?.trim();
  if (text === undefined || text === '' || /^(UNKNOWN|UNLICENSED|SEE LICEN[CS]E IN .*)$/i.test(text)) {
    return { expression: 'NOASSERTION', evidence: text === undefined || text === '' ? `${evidence}: no licence declared` : `${evidence}: "${text}"`, refs: [] };
  }
  const tokens = text.replace(/[()]/g, ' $& ').split(/\s+/).filter((token) => token !== '');
  const isExpression = tokens.length > 0 && tokens.every((token, index) => {
    if (token === '(' || token === ')') return true;
    if (/^(AND|OR|WITH)$/.test(token)) return index > 0;
    if (tokens[index - 1] === 'WITH') return Object.values(exceptions).includes(token);
    return commonSpdxIds.has(token.replace(/\+$/, ''));
  });
  if (isExpression) return { expression: tokens.join(' ').replace(/\( /g, '(').replace(/ \)/g, ')'), evidence, refs: [] };
  const id = licenceRefOf(text);
  return { expression: id, evidence, refs: [{ id, name: text, text: `Declared as "${text}" in ${evidence}.` }] };
}
