/** The commands postinsts call on a fresh install, recorded by running them in the sandbox over the unpacked image with recording shims, and read back as alternatives and symlinks. */

import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runInSandbox } from '../../sandbox/sandbox.js';
import type { AlternativeInstall } from './effects.js';
import { prepareForeignRoot, type HostTools } from './host-tools.js';

/** One command a postinst ran: the package whose postinst it was, and argv (argv[0] the command's name). */
export interface ScriptCall {
  package: string;
  argv: string[];
}

/**
 * Commands that change the system or ask about its state: they are replaced by the
 * recording shim, so the scripts change nothing and see a fresh system. Everything else
 * (echo, cut, sed, test, grep...) is the image's own program, run for real over a
 * read-only root, so values computed with `$(...)` are what dpkg's run computes.
 */
export const shimmedCommands: readonly string[] = [
  'add-shell', 'addgroup', 'adduser', 'chage', 'chgrp', 'chmod', 'chown', 'chpasswd', 'cp', 'deb-systemd-helper', 'deb-systemd-invoke',
  'debconf-set-selections', 'delgroup', 'deluser', 'dpkg', 'dpkg-divert', 'dpkg-maintscript-helper', 'dpkg-query', 'dpkg-reconfigure',
  'dpkg-statoverride', 'dpkg-trigger', 'fc-cache', 'gio-querymodules', 'glib-compile-schemas', 'groupadd', 'groupmod', 'grpconv',
  'gtk-update-icon-cache', 'install', 'install-info', 'invoke-rc.d', 'ldconfig', 'ln', 'locale-gen', 'localedef', 'mandb', 'mkdir',
  'mknod', 'mountpoint', 'mv', 'pam-auth-update', 'passwd', 'py3clean', 'py3compile', 'pyclean', 'pycompile', 'pwconv', 'remove-shell',
  'rm', 'rmdir', 'service', 'setcap', 'shadowconfig', 'start-stop-daemon', 'systemctl', 'systemd-sysusers', 'systemd-tmpfiles', 'touch',
  'ucf', 'ucfr', 'update-alternatives', 'update-binfmts', 'update-ca-certificates', 'update-desktop-database', 'update-icon-caches',
  'update-initramfs', 'update-locale', 'update-mime-database', 'update-rc.d', 'update-shells', 'useradd', 'usermod',
];

/*
 * The log the shim appends to, one record per call, fields ended by NUL:
 *   PACKAGE \0 COUNT \0 ARGV0 \0 ARG1 \0 ... (COUNT fields of argv)
 */
const shimText = `#!/bin/sh
# redo-ts: records this call of a maintainer script and answers as a fresh system would.
n=\${0##*/}
{ printf '%s\\0%s\\0%s\\0' "\${DPKG_MAINTSCRIPT_PACKAGE:-}" "$(($# + 1))" "$n"; for a in "$@"; do printf '%s\\0' "$a"; done; } >> "\${REDO_TS_CALLS:-/build/log/calls}"
case "$n" in
  dpkg)
    case "$1" in
      --print-architecture) echo "$DPKG_MAINTSCRIPT_ARCH" ;;
      # "$2" of a fresh install is empty: dpkg orders an empty version first, or last with -nl.
      --compare-versions)
        if [ -z "$2" ]; then case "$3" in lt|le|ne|'<<'|'<='|gt-nl|ge-nl) exit 0 ;; *) exit 1 ;; esac; fi
        exit 1 ;;
    esac ;;
  dpkg-query) exit 1 ;;
  dpkg-statoverride) case " $* " in *" --list "*) exit 1 ;; esac ;;
  update-alternatives) case " $* " in *" --install "*|*" --set "*|*" --remove "*|*" --auto "*|*" --remove-all "*) ;; *) exit 2 ;; esac ;;
  deb-systemd-helper) case " $* " in *" debian-installed "*|*" is-enabled "*) exit 1 ;; esac ;;
  systemctl) case " $* " in *" is-active "*|*" is-enabled "*) exit 1 ;; esac ;;
esac
exit 0
`;

/*
 * What a postinst sources for debconf (/usr/share/debconf/confmodule) is replaced in the
 * scratch copy by functions that answer every question with an empty value, as a
 * noninteractive frontend with nothing seeded does for a question without a default.
 */
const confmoduleStub = `# redo-ts: debconf answers nothing; the script goes on as if every question had been seen.
for _db in capb set reset title input beginblock endblock go get register unregister subst clear previous_module fget fset metaget version stop purge settitle info progress data x_loadtemplatefile x_save x_setbackup; do
  eval "db_\${_db} () { RET=''; return 0; }"
done
unset _db
`;

/**
 * The driver: each script in turn, as dpkg runs it on a fresh install (a preinst with
 * `install`, a postinst with `configure` and an empty old version), its output dropped;
 * the shims of a preinst log to /build/log/preinst-calls.
 */
const driverText = `cd /
while [ $# -gt 0 ]; do
  export DPKG_MAINTSCRIPT_PACKAGE="$1" DPKG_MAINTSCRIPT_NAME="$3" DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT=1
  script="/var/lib/dpkg/info/$2.$3"
  shift 3
  if [ "$DPKG_MAINTSCRIPT_NAME" = preinst ]; then
    export REDO_TS_CALLS=/build/log/preinst-calls
    if [ -x /usr/bin/timeout ]; then /usr/bin/timeout 60 "$script" install </dev/null >/dev/null 2>&1; else "$script" install </dev/null >/dev/null 2>&1; fi
  else
    export REDO_TS_CALLS=/build/log/calls
    if [ -x /usr/bin/timeout ]; then /usr/bin/timeout 60 "$script" configure "" </dev/null >/dev/null 2>&1; else "$script" configure "" </dev/null >/dev/null 2>&1; fi
  fi
  printf '%s %s %s\\n' "$DPKG_MAINTSCRIPT_PACKAGE" "$DPKG_MAINTSCRIPT_NAME" "$?" >> /build/log/status
done
`;

/** Options of recordPostinstCalls. */
export interface RecordOptions {
  /** The unpacked image: a scratch copy the caller owns (its debconf confmodule is replaced, mount points made). */
  root: string;
  /** A scratch folder for the shims and the log. */
  scratch: string;
  /** The postinsts to run, in dpkg's configure order: the package and its info name (`libc6:amd64`). */
  scripts: ReadonlyArray<{ package: string; infoName: string }>;
  /** The preinsts to run first, in the same order (default none). */
  preinsts?: ReadonlyArray<{ package: string; infoName: string }>;
  architecture: string;
  mtimeSeconds: number;
  env: NodeJS.ProcessEnv;
  /** The subject of messages (`"targets/set.lock.yaml"`). */
  subject: string;
  /**
   * For an image of another architecture than the machine's: the static busybox the
   * scripts run with (prepareForeignRoot replaces the image's programs in `root`).
   */
  hostTools?: HostTools;
}

/** What recordPostinstCalls recorded. */
export interface RecordedScripts {
  /** The shimmed calls of the postinsts, in order. */
  calls: ScriptCall[];
  /** The shimmed calls of the preinsts, in order. */
  preinstCalls: ScriptCall[];
  /** Programs of another architecture the scripts called, not run (hostTools only): the package and the program's path. */
  notRun: Array<{ package: string; program: string }>;
}

/**
 * Runs every postinst of `options.scripts` in the sandbox (lib/sandbox) over the
 * unpacked image, read-only, as dpkg would on a fresh install, with the image's own
 * /bin/sh and tools, except the commands of shimmedCommands, which record their argv
 * and change nothing. With `hostTools` (an image of another architecture), the scripts run
 * with that busybox's shell, the image's programs replaced by its applets, the shims, or a
 * logger of what was not run (prepareForeignRoot). Returns the calls in order, or
 * undefined when the image has no /bin/sh to run them with. A script that fails is not an error (its calls up to there
 * are kept); a sandbox that cannot start is (ERR_SANDBOX_UNAVAILABLE and the like from
 * runInSandbox).
 */
export async function recordPostinstCalls(options: RecordOptions): Promise<RecordedScripts | undefined> {
  const { root } = options;
  if (!existsSync(join(root, 'bin', 'sh')) || options.scripts.length + (options.preinsts?.length ?? 0) === 0) return undefined;
  for (const point of ['build', 'dev', 'proc', 'tmp']) await mkdir(join(root, point), { recursive: true });
  for (const name of ['confmodule', 'confmodule.sh']) {
    const path = join(root, 'usr', 'share', 'debconf', name);
    if (existsSync(path)) await writeFile(path, confmoduleStub);
  }
  const shims = join(options.scratch, 'shims');
  const log = join(options.scratch, 'script-log');
  await mkdir(shims, { recursive: true });
  await mkdir(log, { recursive: true });
  // The image's own /bin/sh, or the host's busybox shell over another architecture's files.
  const shell = options.hostTools === undefined ? '/bin/sh' : '/build/tools/sh';
  await writeFile(join(shims, '.shim'), shimText.replace(/^#!\/bin\/sh/, `#!${shell}`));
  await chmod(join(shims, '.shim'), 0o755);
  for (const name of shimmedCommands) await symlink('.shim', join(shims, name));
  await writeFile(join(log, 'calls'), '');
  await writeFile(join(log, 'preinst-calls'), '');
  await writeFile(join(log, 'not-run'), '');
  const binds = [{ hostPath: shims, sandboxPath: '/build/shims', isWritable: false }, { hostPath: log, sandboxPath: '/build/log', isWritable: true }];
  if (options.hostTools !== undefined) {
    const tools = join(options.scratch, 'host-tools');
    await prepareForeignRoot(root, tools, options.hostTools, shimmedCommands);
    binds.push({ hostPath: tools, sandboxPath: '/build/tools', isWritable: false });
  }
  await runInSandbox({ rootPath: root, key: 'postinst', declaredIn: [] }, {
    label: 'postinst (recording)',
    argv: [shell, '-c', driverText, 'scripts',
      ...(options.preinsts ?? []).flatMap((s) => [s.package, s.infoName, 'preinst']), ...options.scripts.flatMap((s) => [s.package, s.infoName, 'postinst'])],
  }, {
    binds,
    cwd: '/',
    env: {
      PATH: '/build/shims:/usr/sbin:/usr/bin:/sbin:/bin', DPKG_ROOT: '', DPKG_ADMINDIR: '/var/lib/dpkg', DPKG_MAINTSCRIPT_ARCH: options.architecture,
      DEBIAN_FRONTEND: 'noninteractive', DEBIAN_HAS_FRONTEND: '1', HOME: '/root',
    },
    sourceDateEpoch: options.mtimeSeconds,
    hostEnv: options.env,
    subject: options.subject,
  });
  const notRun = (await readFile(join(log, 'not-run'), 'utf8')).split('\0').slice(0, -1);
  const programs: RecordedScripts['notRun'] = [];
  for (let at = 0; at + 1 < notRun.length; at += 2) programs.push({ package: notRun[at]!, program: notRun[at + 1]! });
  return { calls: parseCallLog(await readFile(join(log, 'calls'))), preinstCalls: parseCallLog(await readFile(join(log, 'preinst-calls'))), notRun: programs };
}

/** Reads the shim's log (see shimText); a truncated last record is dropped. */
export function parseCallLog(bytes: Buffer): ScriptCall[] {
  // Every field ends with NUL: what follows the last one is an unfinished field.
  const fields = bytes.toString('utf8').split('\0').slice(0, -1);
  const calls: ScriptCall[] = [];
  let at = 0;
  while (at + 2 < fields.length) {
    const pkg = fields[at]!;
    const count = Number(fields[at + 1]);
    if (!Number.isInteger(count) || count < 1 || at + 2 + count > fields.length) break;
    calls.push({ package: pkg, argv: fields.slice(at + 2, at + 2 + count) });
    at += 2 + count;
  }
  return calls;
}

/** The `update-alternatives [OPTION...] --install LINK NAME PATH PRIORITY [--slave LINK NAME PATH]...` calls. */
export function alternativesOfCalls(calls: readonly ScriptCall[]): AlternativeInstall[] {
  const found: AlternativeInstall[] = [];
  for (const { package: pkg, argv } of calls) {
    if (argv[0] !== 'update-alternatives') continue;
    const at = argv.indexOf('--install');
    if (at < 0) continue;
    const [link, name, path, priority] = argv.slice(at + 1, at + 5);
    if (link === undefined || name === undefined || path === undefined || !/^-?[0-9]+$/.test(priority ?? '')) continue;
    const slaves: AlternativeInstall['slaves'] = [];
    for (let i = at + 5; i < argv.length; i += 1) {
      if (argv[i] === '--slave' && argv[i + 3] !== undefined) {
        slaves.push({ link: argv[i + 1]!, name: argv[i + 2]!, path: argv[i + 3]! });
        i += 3;
      }
    }
    found.push({ link, name, path, priority: Number(priority), slaves, package: pkg });
  }
  return found;
}

/**
 * The symlinks the `ln -s[f][n] TARGET LINK` calls with an absolute LINK leave behind, in
 * call order: a later `mv [-f] LINK NEW` moves one (dash's `ln -s dash /bin/sh.tmp` then
 * `mv /bin/sh.tmp /bin/sh`), a later `rm [-f] LINK` drops it.
 */
export function symlinksOfCalls(calls: readonly ScriptCall[]): Array<{ package: string; target: string; path: string }> {
  const made = new Map<string, { package: string; target: string; path: string }>();
  for (const { package: pkg, argv } of calls) {
    const flags = argv.slice(1).filter((arg) => /^-[a-zA-Z]+$/.test(arg)).join('');
    const operands = argv.slice(1).filter((arg) => !arg.startsWith('-'));
    if (argv[0] === 'ln' && flags.includes('s') && operands.length === 2 && operands[1]!.startsWith('/')) {
      made.set(operands[1]!, { package: pkg, target: operands[0]!, path: operands[1]! });
    } else if (argv[0] === 'mv' && operands.length === 2) {
      const moved = made.get(operands[0]!);
      made.delete(operands[0]!);
      if (moved !== undefined) made.set(operands[1]!, { ...moved, path: operands[1]! });
    } else if (argv[0] === 'rm') {
      for (const path of operands) made.delete(path);
    }
  }
  return [...made.values()];
}

/** The units each `deb-systemd-helper enable UNIT...` call (system instance) enables, in order. */
export function enabledUnitsOfCalls(calls: readonly ScriptCall[]): Array<{ package: string; unit: string }> {
  const found = [];
  for (const { package: pkg, argv } of calls) {
    if (argv[0] !== 'deb-systemd-helper' || argv.includes('--user')) continue;
    const words = argv.slice(1).filter((arg) => !arg.startsWith('--'));
    if (words[0] !== 'enable') continue;
    for (const unit of words.slice(1)) found.push({ package: pkg, unit });
  }
  return found;
}

/*
 * dpkg's diversions file (var/lib/dpkg/diversions), three lines per diversion, the one
 * added last first (dpkg keeps them in a list it adds to at the front):
 *   /bin/sh              the diverted path
 *   /bin/sh.distrib      where the package's file goes instead
 *   dash                 the package that holds it (`:` for a local diversion)
 */
/**
 * The diversions file the `dpkg-divert` calls leave: `[--add] FILE` with `--divert TO`
 * (default FILE.distrib) and `--package P` (default local), `--remove FILE` dropping one;
 * listing calls are ignored. Files are not renamed (merged-/usr and the packages' own
 * paths already place them), so only the table is reproduced.
 */
export function diversionsOfCalls(calls: readonly ScriptCall[]): string {
  const diversions: Array<{ from: string; to: string; holder: string }> = [];
  for (const { argv } of calls) {
    if (argv[0] !== 'dpkg-divert') continue;
    let to: string | undefined;
    let holder = ':';
    let action = '--add';
    const operands: string[] = [];
    for (let i = 1; i < argv.length; i += 1) {
      const arg = argv[i]!;
      if (arg === '--divert') to = argv[(i += 1)];
      else if (arg === '--package') holder = argv[(i += 1)] ?? ':';
      else if (arg === '--admindir' || arg === '--instdir' || arg === '--root') i += 1;
      else if (['--add', '--remove', '--list', '--listpackage', '--truename'].includes(arg)) action = arg;
      else if (!arg.startsWith('--')) operands.push(arg);
    }
    const from = operands[0];
    if (from === undefined || (action !== '--add' && action !== '--remove')) continue;
    const at = diversions.findIndex((diversion) => diversion.from === from);
    if (at >= 0) diversions.splice(at, 1);
    if (action === '--add') diversions.unshift({ from, to: to ?? `${from}.distrib`, holder });
  }
  return diversions.map((d) => `${d.from}\n${d.to}\n${d.holder}\n`).join('');
}

/**
 * What the preinsts' `mkdir [-p] [-m MODE] DIR...` and `touch FILE...` calls with absolute
 * paths leave on a fresh install, in call order (python3.11-minimal's install marker
 * /var/lib/python/python3.11_installed): folders (0755 unless `-m`, with `-p` their
 * parents too) and empty files (0644). Paths without the leading slash.
 */
export function preinstFilesOfCalls(calls: readonly ScriptCall[]): Array<{ path: string; type: 'directory' | 'file'; mode: number }> {
  const made = new Map<string, { path: string; type: 'directory' | 'file'; mode: number }>();
  for (const { argv } of calls) {
    if (argv[0] !== 'mkdir' && argv[0] !== 'touch') continue;
    let mode: number | undefined;
    let hasParents = false;
    const operands: string[] = [];
    for (let i = 1; i < argv.length; i += 1) {
      const arg = argv[i]!;
      if (arg === '-m' || arg === '--mode') mode = Number.parseInt(argv[(i += 1)] ?? '', 8);
      else if (arg.startsWith('--mode=')) mode = Number.parseInt(arg.slice('--mode='.length), 8);
      else if (arg === '-p' || arg === '--parents') hasParents = true;
      else if (/^-[a-z]+$/.test(arg)) hasParents ||= arg.includes('p');
      else if (arg.startsWith('/')) operands.push(arg.replace(/^\/+/, '').replace(/\/+$/, ''));
    }
    for (const path of operands) {
      if (path === '' || path.split('/').includes('..')) continue;
      if (argv[0] === 'touch') {
        if (!made.has(path)) made.set(path, { path, type: 'file', mode: 0o644 });
        continue;
      }
      const parts = path.split('/');
      if (hasParents) {
        for (let n = 1; n < parts.length; n += 1) {
          const parent = parts.slice(0, n).join('/');
          if (!made.has(parent)) made.set(parent, { path: parent, type: 'directory', mode: 0o755 });
        }
      }
      made.set(path, { path, type: 'directory', mode: Number.isInteger(mode) ? mode! & 0o7777 : 0o755 });
    }
  }
  return [...made.values()];
}
