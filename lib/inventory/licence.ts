/** Licences of Debian packages: machine-readable debian/copyright files to SPDX licence expressions. */

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

/**
 * The licence of a package from its copyright file (`text`, at `path` in the package).
 * Only a machine-readable file (copyright-format 1.0: a first paragraph with a `Format:`
 * field naming it) is read: the distinct `License:` expressions of its `Files:`
 * paragraphs, in file order, joined with AND. Any other file, or none (`text`
 * undefined), gives NOASSERTION. Pure.
 */
export function licenceOfCopyright(text: string | undefined, path: string): LicenceFinding {
  if (text === undefined) return { expression: 'NOASSERTION', evidence: `no ${path} in the package`, refs: [] };
  const paragraphs = parseDeb822(text);
  const format = paragraphs[0]?.get('format');
  if (format === undefined || !/copyright-format\/1\.0/.test(format)) {
    return { expression: 'NOASSERTION', evidence: `${path} is not machine-readable (copyright-format 1.0)`, refs: [] };
  }
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
