/** Postinsts of an image of another architecture, run with the build environment's static busybox: the image's programs replaced in a scratch copy by host-architecture stand-ins. */

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, lstat, mkdir, open, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { resolveInRoot } from '../../sandbox/environment.js';

/** A static busybox of the machine's architecture, from a build environment. */
export interface HostTools {
  /** Host path of the busybox binary. */
  busybox: string;
  /** sha256 hex of its bytes: what the recorded calls depend on. */
  sha256: string;
  /** Its ELF machine (e_machine: 62 x86-64, 183 AArch64, ...). */
  machine: number;
  /** The specs its environment was declared in, for messages. */
  declaredIn: string[];
}

/** The ELF machine and whether the file asks for a dynamic linker (PT_INTERP), or undefined for a file that is not ELF. */
export function elfFacts(bytes: Buffer): { machine: number; isDynamic: boolean } | undefined {
  if (bytes.length < 20 || bytes.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const is64 = bytes[4] === 2;
  const isLittle = bytes[5] === 1;
  const u16 = (at: number): number => (isLittle ? bytes.readUInt16LE(at) : bytes.readUInt16BE(at));
  const u32 = (at: number): number => (isLittle ? bytes.readUInt32LE(at) : bytes.readUInt32BE(at));
  const machine = u16(18);
  if (bytes.length < (is64 ? 64 : 52)) return { machine, isDynamic: false };
  const phoff = is64 ? Number(isLittle ? bytes.readBigUInt64LE(32) : bytes.readBigUInt64BE(32)) : u32(28);
  const phentsize = u16(is64 ? 54 : 42);
  const phnum = u16(is64 ? 56 : 44);
  let isDynamic = false;
  for (let i = 0; i < phnum; i += 1) {
    const at = phoff + i * phentsize;
    if (at + 4 > bytes.length) break;
    if (u32(at) === 3) isDynamic = true;
  }
  return { machine, isDynamic };
}

/**
 * The static busybox of a build environment's root (`/usr/bin/busybox` or `/bin/busybox`,
 * as busybox-static installs it), or undefined when it has none or that busybox needs a
 * dynamic linker (it could not run over another architecture's files).
 */
export async function hostToolsOf(environmentRoot: string, declaredIn: string[]): Promise<HostTools | undefined> {
  for (const member of ['usr/bin/busybox', 'bin/busybox']) {
    const path = resolveInRoot(environmentRoot, member, true);
    if (!existsSync(path)) continue;
    const bytes = await readFile(path);
    const facts = elfFacts(bytes);
    if (facts === undefined || facts.isDynamic) continue;
    return { busybox: path, sha256: createHash('sha256').update(bytes).digest('hex'), machine: facts.machine, declaredIn };
  }
  return undefined;
}

/** busybox applets that are not the Debian program of that name (they would answer differently): never stand-ins. */
const impostorApplets: readonly string[] = ['dpkg', 'dpkg-deb', 'start-stop-daemon', 'rpm', 'rpm2cpio', 'init', 'linuxrc'];

/** A script that logs the program it stands for (`$0`) as not run and succeeds with no output, as a fresh system's query mostly does. */
const notRunText = `#!/build/tools/sh
# redo-ts: a program of the image's architecture, which this machine cannot run: logged, not run.
printf '%s\\0%s\\0' "\${DPKG_MAINTSCRIPT_PACKAGE:-}" "$0" >> /build/log/not-run
exit 0
`;

/**
 * The image's shells (dash, bash) by the host's busybox. busybox's shell runs its own
 * applet of a name before looking at PATH (`cp`, `chown`, `dpkg`...), so a script file
 * is sourced after the shimmed commands that are applets are made aliases of their shims
 * (`.aliases`); the options of the `#!` line (`-e`) are kept, and `$0` is the script.
 */
const shellText = `#!/build/tools/sh
options=''
while [ $# -gt 0 ]; do
  case "$1" in -c|-s|-i|--) break ;; -?*) options="$options $1"; shift ;; *) break ;; esac
done
if [ $# -gt 0 ] && [ -f "$1" ]; then exec /build/tools/sh $options -c '. /build/tools/.aliases; . "$0"' "$@"; fi
exec /build/tools/sh $options "$@"
`;

/** getent for the files databases, as glibc's answers them from /etc (exit 2: a key not found; other databases: 2). */
const getentText = `#!/build/tools/sh
db=$1
shift
case "$db" in passwd|group|shadow|gshadow) ;; *) exit 2 ;; esac
[ -r "/etc/$db" ] || exit 2
if [ $# -eq 0 ]; then /build/tools/busybox cat "/etc/$db"; exit 0; fi
status=0
for key in "$@"; do
  line=$(/build/tools/busybox awk -F: -v k="$key" '$1 == k || (k ~ /^[0-9]+$/ && $3 == k) { print; exit }' "/etc/$db")
  if [ -n "$line" ]; then printf '%s\\n' "$line"; else status=2; fi
done
exit $status
`;

/** What prepareForeignRoot did: the stand-ins made, by kind. */
export interface ForeignRootReport {
  /** Programs replaced by a busybox applet or redo-ts's getent. */
  standIns: number;
  /** Programs replaced by the recording shim. */
  shimmed: number;
  /** Programs replaced by the not-run logger. */
  notRun: number;
}

/**
 * Fills `toolsDir` (bound at /build/tools) with the busybox, a link per applet, `sh`
 * wrappers and getent, and replaces, in the scratch copy `root`, every executable ELF
 * file of another machine than the busybox's: by the applet of its name (`sed`, `cut`,
 * `timeout`...), by a `sh` wrapper (dash, bash), by getent, by the recording shim
 * (`/build/shims/NAME`) when its name is one of `shimmed`, else by the not-run logger.
 * The mount points (build, dev, proc, tmp) are not walked.
 */
export async function prepareForeignRoot(root: string, toolsDir: string, tools: HostTools, shimmed: readonly string[]): Promise<ForeignRootReport> {
  await mkdir(toolsDir, { recursive: true });
  await copyFile(tools.busybox, join(toolsDir, 'busybox'));
  await chmod(join(toolsDir, 'busybox'), 0o755);
  const listed = spawnSync(join(toolsDir, 'busybox'), ['--list'], { encoding: 'utf8', env: {} });
  const all = (listed.status === 0 ? listed.stdout : 'sh\n').split('\n').filter((name) => /^[a-z0-9][a-z0-9._+-]*$/.test(name) && name !== 'busybox');
  const applets = new Set(all.filter((name) => !impostorApplets.includes(name)));
  applets.add('sh');
  for (const name of [...applets].sort()) await symlink('busybox', join(toolsDir, name));
  const aliases = all.filter((name) => shimmed.includes(name)).sort().map((name) => `alias ${name}=/build/shims/${name}\n`).join('');
  for (const [name, text] of [['.not-run', notRunText], ['.shell', shellText], ['getent', getentText], ['.aliases', aliases]] as const) {
    await rm(join(toolsDir, name), { force: true });
    await writeFile(join(toolsDir, name), text);
    await chmod(join(toolsDir, name), 0o755);
  }
  const report: ForeignRootReport = { standIns: 0, shimmed: 0, notRun: 0 };
  const header = Buffer.alloc(20);
  const walk = async (folder: string): Promise<void> => {
    for (const item of (await readdir(join(root, folder), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const member = folder === '' ? item.name : `${folder}/${item.name}`;
      if (item.isDirectory()) {
        if (folder === '' && ['build', 'dev', 'proc', 'tmp'].includes(item.name)) continue;
        await walk(member);
        continue;
      }
      if (!item.isFile()) continue;
      const path = join(root, member);
      if (((await lstat(path)).mode & 0o111) === 0) continue;
      const handle = await open(path, 'r');
      const { bytesRead } = await handle.read(header, 0, 20, 0).finally(() => handle.close());
      const facts = elfFacts(header.subarray(0, bytesRead));
      if (facts === undefined || facts.machine === tools.machine) continue;
      const name = item.name;
      let target: string;
      if (name === 'dash' || name === 'bash' || name === 'rbash') target = '/build/tools/.shell';
      else if (shimmed.includes(name)) target = `/build/shims/${name}`;
      else if (applets.has(name) || name === 'getent') target = `/build/tools/${name}`;
      else target = '/build/tools/.not-run';
      if (target === '/build/tools/.not-run') report.notRun += 1;
      else if (target.startsWith('/build/shims/')) report.shimmed += 1;
      else report.standIns += 1;
      await rm(path);
      await symlink(target, path);
    }
  };
  await walk('');
  return report;
}
