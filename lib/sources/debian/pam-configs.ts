/** What libpam-runtime's `pam-auth-update --package --force` writes on a fresh install (debconf noninteractive), computed in TypeScript from an image's /usr/share/pam-configs and /usr/share/pam templates: a port of the Perl script for images whose Perl cannot run here. */

import { existsSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One PAM profile of /usr/share/pam-configs as pam-auth-update parses it: its fields (`-Final` dropped) and its Conflicts. */
export interface PamProfile {
  fields: Map<string, string>;
  conflicts: Set<string>;
  disabled: boolean;
}

/** The five files pam-auth-update writes, in its order. */
export const PAM_TYPES = ['auth', 'account', 'password', 'session', 'session-noninteractive'] as const;

/** Modules whose profiles pam-auth-update ignores (its @invalid_modules). */
const INVALID_MODULES = ['pam_tally'];

// Perl's \s and \S on bytes (files are read as latin1, one character a byte).
// `$` of Perl also matches before a last newline, which the trailing class takes here.
const FIELD_LINE = /^([^ \t\n\r\f\v]+):[ \t\n\r\f\v]+([^\n]*)[ \t\n\r\f\v]*$/;
const MODULE_LINE = /^((\[[^\]]+\]|\w+)[ \t\n\r\f\v]+[^ \t\n\r\f\v]+)[ \t\n\r\f\v]*([^\n]*)/;

/** Perl's lines of a text: each with its newline, the last one without when the text does not end in one. */
function perlLines(text: string): string[] {
  const lines = text.split(/(?<=\n)/);
  return lines.filter((line) => line !== '');
}

/** Perl's `split(/PATTERN/, text)`: trailing empty fields dropped. */
function perlSplit(text: string | undefined, pattern: RegExp): string[] {
  if (text === undefined || text === '') return [];
  const parts = text.split(pattern);
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Perl's numeric value of a string (`<=>`): its leading number, 0 when none. */
function perlNumber(text: string | undefined): number {
  const found = /^[ \t\n\r\f\v]*([-+]?(\d+\.?\d*([eE][-+]?\d+)?|\.\d+([eE][-+]?\d+)?))/.exec(text ?? '');
  return found === null ? 0 : Number(found[1]);
}

/** Perl's truth of a string: undefined, '' and '0' are false. */
function perlTrue(text: string | undefined): text is string {
  return text !== undefined && text !== '' && text !== '0';
}

/** Perl's `cmp` on byte strings (latin1 text: one UTF-16 unit a byte). */
function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A profile's text parsed as pam-auth-update's parse_pam_profile does. */
export function parsePamProfile(text: string): PamProfile {
  const fields = new Map<string, string>();
  const conflicts = new Set<string>();
  let disabled = false;
  let fieldName = '';
  for (const line of perlLines(text)) {
    const found = FIELD_LINE.exec(line);
    if (found !== null) {
      fieldName = found[1]!.replace(/-Final$/, '');
      const full = found[2]!;
      if (fieldName === 'Conflicts') for (const item of perlSplit(full, /, /)) conflicts.add(item);
      else fields.set(fieldName, full);
    } else {
      const stripped = line.replace(/\n$/, '').replace(/^[ \t\n\r\f\v]+/, '').replace(/[ \t\n\r\f\v]+$/, '');
      let value = fields.get(fieldName);
      if (perlTrue(stripped)) value = `${value ?? ''}\n${stripped}`;
      if (value !== undefined && INVALID_MODULES.some((module) => value!.includes(module))) disabled = true;
      if (value !== undefined) fields.set(fieldName, value.replace(/^[\n \t\r\f\v]+/, ''));
    }
  }
  if (!fields.has('Session-Interactive-Only')) {
    for (const suffix of ['-Type', '', '-Initial']) {
      const value = fields.get(`Session${suffix}`);
      if (value === undefined) fields.delete(`Session-noninteractive${suffix}`);
      else fields.set(`Session-noninteractive${suffix}`, value);
    }
  }
  return { fields, conflicts, disabled };
}

/** pam-auth-update's profile order: Priority high to low, then name in reverse byte order. */
function byPriority(profiles: ReadonlyMap<string, PamProfile>): (a: string, b: string) => number {
  return (a, b) => (perlNumber(profiles.get(b)?.fields.get('Priority')) - perlNumber(profiles.get(a)?.fields.get('Priority'))) || byteCompare(b, a);
}

/** The lines of a module for a type: its `-Initial` lines when it is the first of its block and has them. */
function linesOf(profile: PamProfile, ucType: string, position: number): string | undefined {
  const initial = profile.fields.get(`${ucType}-Initial`);
  if (position === 0 && perlTrue(initial)) return initial;
  return profile.fields.get(ucType);
}

/** The profiles selected with debconf's noninteractive frontend on a fresh install: every one whose Default is yes, ordered, conflicts dropped. */
export function selectProfiles(profiles: ReadonlyMap<string, PamProfile>): { sorted: string[]; enabled: string[] } {
  const sorted = [...profiles.keys()].sort(byPriority(profiles));
  let enabled = sorted.filter((name) => profiles.get(name)!.fields.get('Default') === 'yes').sort(byPriority(profiles));
  enabled = enabled.filter((name, index) => index === 0 || name !== enabled[index - 1]);
  // Perl's foreach over the array it splices: by index over the live array.
  for (let k = 0; k < enabled.length; k += 1) {
    const element = enabled[k]!;
    for (let i = enabled.length - 1; i >= 0; i -= 1) {
      if (profiles.get(element)?.conflicts.has(enabled[i]!)) enabled.splice(i, 1);
    }
  }
  return { sorted, enabled };
}

/** merge_one_line without a diff: the control and module with `end` replaced by the count, then the options. */
function mergeOneLine(line: string, count: number): string | undefined {
  const found = MODULE_LINE.exec(line);
  if (found === null) return undefined;
  const options = perlSplit(found[3]!, /[ \t\n\r\f\v]+/);
  return `${found[1]!.replaceAll('end', String(count))} ${options.join(' ')}\n`;
}

/** create_from_template on a fresh install: the template with the Primary and Additional blocks filled in, or undefined where the script writes nothing. */
function fromTemplate(template: string, profiles: ReadonlyMap<string, PamProfile>, enabled: readonly string[], type: string): string | undefined {
  const ucType = type.charAt(0).toUpperCase() + type.slice(1);
  const prefix = type.replace(/-noninteractive/, '');
  let state = 0;
  let out = '';
  for (const line of perlLines(template)) {
    if (state === 1) {
      if (/^# here's the fallback if no module succeeds/.test(line)) { out += line; state += 1; }
      continue;
    }
    if (state === 3) {
      if (/^# end of pam-auth-update config/.test(line)) { out += line; state += 1; }
      continue;
    }
    out += line;
    let pattern: RegExp;
    let block: string;
    if (state === 0) { pattern = /^# here are the per-package modules \(the "Primary" block\)/; block = 'Primary'; }
    else if (state === 2) { pattern = /^# and here are more per-package modules \(the "Additional" block\)/; block = 'Additional'; }
    else continue;
    if (!pattern.test(line)) continue;
    const members = enabled.filter((name) => {
      const kind = profiles.get(name)!.fields.get(`${ucType}-Type`);
      return perlTrue(kind) && kind === block;
    });
    let count = 0;
    members.forEach((name, position) => { count += perlSplit(linesOf(profiles.get(name)!, ucType, position), /\n+/).length; });
    if (block === 'Additional') count -= 1;
    if (block === 'Primary' && count === 0) out += `${prefix}\t[default=1]\t\t\tpam_permit.so\n`;
    for (const [position, name] of members.entries()) {
      for (const moduleLine of perlSplit(linesOf(profiles.get(name)!, ucType, position), /\n/)) {
        const merged = mergeOneLine(moduleLine, count);
        if (merged === undefined) return undefined;
        out += `${prefix}\t${merged}`;
        count -= 1;
      }
    }
    state += 1;
  }
  return state < 4 ? undefined : out;
}

/** The state file /var/lib/pam/TYPE: each enabled module's lines for the type, Primary ones first. */
function stateFile(profiles: ReadonlyMap<string, PamProfile>, enabled: readonly string[], type: string): string {
  const ucType = type.charAt(0).toUpperCase() + type.slice(1);
  let out = '';
  for (const skip of ['Additional', 'Primary']) {
    let position = 0;
    for (const name of enabled) {
      const profile = profiles.get(name)!;
      const kind = profile.fields.get(`${ucType}-Type`);
      if (!perlTrue(kind) || kind === skip) continue;
      const lines = linesOf(profile, ucType, position);
      position += 1;
      if (perlTrue(lines)) out += `Module: ${name}\n${lines}\n`;
    }
    if (skip === 'Additional' && position === 0) out += 'Module: null\n[default=1]\t\t\tpam_permit.so\n';
  }
  return out;
}

/** Whether a path exists, a dangling link included. */
async function isPresent(path: string): Promise<boolean> {
  return lstat(path).then(() => true, () => false);
}

/** What pam-auth-update writes: image paths (no leading slash) and their bytes, in the order it writes them. */
export type PamFiles = Array<{ path: string; bytes: Buffer }>;

/**
 * The files `pam-auth-update --package --force` writes over a fresh image at `root` with
 * debconf's noninteractive frontend: /var/lib/pam/seen, then per type /etc/pam.d/common-TYPE
 * and /var/lib/pam/TYPE. A string says why it cannot be computed (no profiles or templates;
 * state of an earlier run, whose merge this port does not do; a case the script would
 * loop on or stop at).
 */
export async function pamAuthUpdateFiles(root: string): Promise<PamFiles | string> {
  const inputDir = join(root, 'usr/share/pam-configs');
  if (!existsSync(inputDir)) return 'no /usr/share/pam-configs';
  for (const type of PAM_TYPES) {
    if (await isPresent(join(root, 'etc/pam.d', `common-${type}`)) || await isPresent(join(root, 'var/lib/pam', type))) {
      return `the image already has /etc/pam.d/common-${type} or /var/lib/pam/${type} (only a fresh install is computed)`;
    }
  }
  const profiles = new Map<string, PamProfile>();
  for (const raw of await readdir(inputDir, { encoding: 'buffer' })) {
    const name = raw.toString('latin1');
    if (/~$/.test(name) || /^#.+#$/.test(name)) continue;
    const path = Buffer.concat([Buffer.from(`${inputDir}/`), raw]);
    // A link could lead out of the image's copy (the script runs in a chroot): not followed.
    if (!(await lstat(path)).isFile()) return `/usr/share/pam-configs/${name} is not a regular file`;
    const profile = parsePamProfile((await readFile(path)).toString('latin1'));
    if (!profile.disabled) profiles.set(name, profile);
  }
  const { sorted, enabled } = selectProfiles(profiles);
  if (enabled.length === 0) return 'no profile of /usr/share/pam-configs is Default: yes (pam-auth-update would ask)';
  const files: PamFiles = [{ path: 'var/lib/pam/seen', bytes: Buffer.from(sorted.map((name) => `${name}\n`).join(''), 'latin1') }];
  for (const type of PAM_TYPES) {
    const templatePath = join(root, 'usr/share/pam', `common-${type}`);
    const template = existsSync(templatePath) && (await lstat(templatePath)).isFile() ? await readFile(templatePath, 'latin1') : undefined;
    const made = template === undefined ? undefined : fromTemplate(template, profiles, enabled, type);
    // The script stops at the first type it cannot write.
    if (made === undefined) return `/usr/share/pam/common-${type} is missing, not a regular file or not a pam-auth-update template, or a profile line is not "CONTROL MODULE [OPTIONS]"`;
    files.push({ path: `etc/pam.d/common-${type}`, bytes: Buffer.from(made, 'latin1') });
    files.push({ path: `var/lib/pam/${type}`, bytes: Buffer.from(stateFile(profiles, enabled, type), 'latin1') });
  }
  return files;
}
