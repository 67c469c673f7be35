/** The file-system effects of a maintainer script's plain commands (adduser, chown, chmod, touch, mkdir, ln, cp), read without running it, as on a fresh install. */

/** One effect a postinst has on a fresh install. */
export type ScriptAction =
  | { kind: 'adduser'; name: string; home: string; shell: string; gecos: string; hasOwnGroup: boolean; group?: string; isHomeCreated: boolean }
  | { kind: 'addgroup'; name: string }
  | { kind: 'chown'; owner?: string; group?: string; paths: string[]; mode?: number }
  | { kind: 'chmod'; mode: number; paths: string[] }
  | { kind: 'touch'; paths: string[]; mode?: number }
  | { kind: 'mkdir'; paths: string[]; mode?: number }
  | { kind: 'symlink'; target: string; path: string }
  | { kind: 'copy'; from: string; to: string }
  | { kind: 'write'; path: string; text: string };

const heredocMarker = '\u0000heredoc';

/** Splits a command line into words, honouring quotes; undefined when it holds what is not understood (command substitution, globs). */
function words(line: string): string[] | undefined {
  if (/`|\$\(|[*?[]/.test(line)) return undefined;
  const out: string[] = [];
  let current = '';
  let hasWord = false;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i]!;
    if (c === '"' || c === '\'') {
      const end = line.indexOf(c, i + 1);
      if (end < 0) return undefined;
      current += line.slice(i + 1, end);
      hasWord = true;
      i = end;
    } else if (c === ' ' || c === '\t') {
      if (hasWord) out.push(current);
      current = '';
      hasWord = false;
    } else {
      current += c;
      hasWord = true;
    }
  }
  if (hasWord) out.push(current);
  return out;
}

/** Simple commands of a line: split at `;`, `&&`, `||`, `|` outside quotes, redirections dropped, `if`/`then`/`!` prefixes dropped. */
function commandsOf(line: string): string[] {
  const parts: string[] = [];
  let quote = '';
  let start = 0;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i]!;
    if (quote !== '') {
      if (c === quote) quote = '';
    } else if (c === '"' || c === '\'') quote = c;
    else if (c === ';' || c === '|' || (c === '&' && line[i + 1] === '&')) {
      parts.push(line.slice(start, i));
      if (line[i + 1] === c) i += 1;
      start = i + 1;
    }
  }
  parts.push(line.slice(start));
  return parts
    .map((part) => part.replace(/\s[0-9]*>>?\s*&?\S+/g, ' ').replace(/\s[0-9]*<\s*\S+/g, ' ').trim())
    .map((part) => part.replace(/^(?:(?:if|then|else|elif|do|while|!)\s+)+/, '').trim())
    .filter((part) => part !== '');
}

/**
 * Reads the effects of `script` on a fresh install (`$1` = configure, `$2` empty):
 * variable assignments are followed (`logdir="/var/log/nginx"`), shell functions are
 * expanded where called with literal arguments (redis-tools' Setup_dir), `if` conditions
 * are taken as true, of a `case` only the `configure)` branch of `case "$1"` and the `*)`
 * branch of any other, and the commands adduser/addgroup --system, chown, chmod (octal),
 * dpkg-statoverride --add, touch, mkdir, ln -s, cp and `cat > FILE <<EOF`
 * (its text) become actions, in
 * order. A command using anything else (an unknown variable, command substitution) is
 * skipped. Pure.
 */
export function readScriptActions(script: string): ScriptAction[] {
  // `cat > FILE <<EOF` ... `EOF` (or <<-EOF, tabs stripped) becomes one pseudo-command line
  // carrying the text, so the rest of the reading never sees the document's lines.
  const raw = script.replace(/\\\n/g, ' ').split('\n');
  const lines: string[] = [];
  for (let i = 0; i < raw.length; i += 1) {
    const heredoc = /^\s*cat\s*>\s*(\S+)\s*<<(-?)\s*(['"]?)([A-Za-z_]+)\3\s*$/.exec(raw[i]!);
    if (heredoc === null) {
      lines.push(raw[i]!.replace(/(^|\s)#.*$/, '').trim());
      continue;
    }
    const body: string[] = [];
    for (i += 1; i < raw.length && raw[i]!.replace(heredoc[2] === '-' ? /^\t+/ : /^$/, '') !== heredoc[4]; i += 1) body.push(heredoc[2] === '-' ? raw[i]!.replace(/^\t+/, '') : raw[i]!);
    lines.push(`${heredocMarker} ${JSON.stringify({ path: heredoc[1], text: `${body.join('\n')}\n`, isLiteral: heredoc[3] !== '' })}`);
  }
  const functions = new Map<string, string[]>();
  // Function bodies: NAME () { ... } at the start of a line, to the first line that is "}".
  const body: string[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const definition = /^([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*\)\s*\{?$/.exec(lines[i]!);
    if (definition === null) {
      body.push(lines[i]!);
      continue;
    }
    const inner: string[] = [];
    for (i += 1; i < lines.length && lines[i] !== '}'; i += 1) if (lines[i] !== '{') inner.push(lines[i]!);
    functions.set(definition[1]!, inner);
  }
  const actions: ScriptAction[] = [];
  let umask = 0o022;
  const run = (source: readonly string[], variables: Map<string, string>, depth: number): void => {
    // `case WORD in`: only the `configure` branch of `case "$1"` is taken; on anything
    // else (a debconf answer) only the `*)` branch, as for an answer no branch names.
    const cases: Array<{ isFirstArgument: boolean; isActive: boolean }> = [];
    for (const rawLine of source) {
      let line = rawLine;
      const opened = /^case\s+(.+?)\s+in\b/.exec(line);
      if (opened !== null) {
        cases.push({ isFirstArgument: /^"?\$\{?1\}?"?$/.test(opened[1]!), isActive: false });
        continue;
      }
      if (/^esac\b/.test(line)) {
        cases.pop();
        continue;
      }
      const current = cases.at(-1);
      if (current !== undefined) {
        const label = /^\(?([^()]*?)\)\s*(.*)$/.exec(line);
        if (label !== null && !/^[A-Za-z_][A-Za-z0-9_]*\s*\(\s*$/.test(line)) {
          const patterns = label[1]!.split('|').map((pattern) => pattern.trim().replace(/^["']|["']$/g, ''));
          // The value of any other word is unknown (a debconf answer, its default unasked): only `*)` is taken.
          current.isActive = current.isFirstArgument ? patterns.includes('configure') : patterns.includes('*');
          line = label[2]!;
        }
        line = line.replace(/;;\s*$/, '');
      }
      if (cases.some((c) => !c.isActive)) continue;
      if (line.startsWith(heredocMarker)) {
        const document = JSON.parse(line.slice(heredocMarker.length + 1)) as { path: string; text: string; isLiteral: boolean };
        const path = expand(document.path, variables);
        const text = document.isLiteral ? document.text : expand(document.text, variables);
        if (path !== undefined && text !== undefined && path.startsWith('/')) actions.push({ kind: 'write', path, text });
        continue;
      }
      for (const command of commandsOf(line)) {
        const assignment = /^(?:local\s+|readonly\s+|export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(command);
        const expanded = expand(assignment === null ? command : assignment[2]!, variables);
        if (expanded === undefined) {
          if (assignment !== null) variables.delete(assignment[1]!);
          continue;
        }
        if (assignment !== null) {
          const value = words(expanded);
          if (value !== undefined && value.length <= 1) variables.set(assignment[1]!, value[0] ?? '');
          continue;
        }
        const argv = words(expanded);
        if (argv === undefined || argv.length === 0) continue;
        const called = functions.get(argv[0]!);
        if (called !== undefined && depth < 4) {
          const scope = new Map(variables);
          argv.slice(1).forEach((arg, index) => scope.set(String(index + 1), arg));
          run(called, scope, depth + 1);
          continue;
        }
        if (argv[0] === 'umask' && /^[0-7]{3,4}$/.test(argv[1] ?? '')) {
          umask = parseInt(argv[1]!, 8);
          continue;
        }
        const action = actionOf(argv);
        // touch and mkdir make what the umask leaves of 0666 and 0777.
        if (action?.kind === 'touch') actions.push({ ...action, mode: 0o666 & ~umask });
        else if (action?.kind === 'mkdir') actions.push({ ...action, mode: action.mode ?? (0o777 & ~umask) });
        else if (action !== undefined) actions.push(action);
      }
    }
  };
  // DPKG_ROOT is empty when dpkg installs into the running system (as in a chroot).
  run(body, new Map([['1', 'configure'], ['2', ''], ['DPKG_ROOT', '']]), 0);
  return actions;
}

function expand(text: string, variables: ReadonlyMap<string, string>): string | undefined {
  let isKnown = true;
  const out = text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*|[0-9])\}|\$([A-Za-z_][A-Za-z0-9_]*|[0-9])/g, (_all, braced: string | undefined, bare: string | undefined) => {
    const value = variables.get((braced ?? bare)!);
    if (value === undefined) isKnown = false;
    return value ?? '';
  });
  return isKnown ? out : undefined;
}

function actionOf(argv: string[]): ScriptAction | undefined {
  const [name, ...args] = argv as [string, ...string[]];
  const paths = (list: string[]): string[] => list.filter((arg) => arg.startsWith('/'));
  switch (name) {
    case 'adduser': {
      if (!args.includes('--system')) return undefined;
      const option = (flag: string): string | undefined => {
        const at = args.indexOf(flag);
        return at >= 0 ? args[at + 1] : undefined;
      };
      const valued = new Set(['--home', '--shell', '--gecos', '--ingroup', '--uid', '--gid', '--comment']);
      const positional = args.filter((arg, index) => !arg.startsWith('--') && !valued.has(args[index - 1] ?? ''));
      if (positional.length !== 1) return undefined;
      const group = option('--ingroup');
      return {
        kind: 'adduser', name: positional[0]!, home: option('--home') ?? '/nonexistent', shell: option('--shell') ?? '/usr/sbin/nologin',
        gecos: option('--gecos') ?? option('--comment') ?? '', hasOwnGroup: args.includes('--group'), ...(group !== undefined ? { group } : {}),
        isHomeCreated: !args.includes('--no-create-home') && (option('--home') ?? '/nonexistent') !== '/nonexistent',
      };
    }
    case 'addgroup': {
      const positional = args.filter((arg) => !arg.startsWith('--'));
      return args.includes('--system') && positional.length === 1 ? { kind: 'addgroup', name: positional[0]! } : undefined;
    }
    case 'chown': {
      const rest = args.filter((arg) => !arg.startsWith('-'));
      if (rest.length < 2) return undefined;
      const [owner, group] = rest[0]!.split(/[:.]/);
      return { kind: 'chown', ...(owner !== '' && owner !== undefined ? { owner } : {}), ...(group !== undefined && group !== '' ? { group } : {}), paths: paths(rest.slice(1)) };
    }
    case 'chmod': {
      const rest = args.filter((arg) => !arg.startsWith('-'));
      if (rest.length < 2 || !/^[0-7]{3,4}$/.test(rest[0]!)) return undefined;
      return { kind: 'chmod', mode: parseInt(rest[0]!, 8), paths: paths(rest.slice(1)) };
    }
    case 'dpkg-statoverride': {
      const at = args.indexOf('--add');
      const [owner, group, mode, path] = args.slice(at + 1);
      if (at < 0 || path === undefined || !/^[0-7]{3,4}$/.test(mode!)) return undefined;
      return { kind: 'chown', owner: owner!, group: group!, paths: [path], mode: parseInt(mode!, 8) };
    }
    case 'touch':
      return { kind: 'touch', paths: paths(args) };
    case 'mkdir': {
      const at = args.indexOf('-m');
      const mode = at >= 0 && /^[0-7]{3,4}$/.test(args[at + 1] ?? '') ? parseInt(args[at + 1]!, 8) : undefined;
      return { kind: 'mkdir', paths: paths(args.filter((_arg, index) => index !== at + 1 || at < 0)), ...(mode !== undefined ? { mode } : {}) };
    }
    case 'ln': {
      const rest = args.filter((arg) => !arg.startsWith('-'));
      return args.some((arg) => /^-[a-z]*s/.test(arg)) && rest.length === 2 && rest[1]!.startsWith('/') ? { kind: 'symlink', target: rest[0]!, path: rest[1]! } : undefined;
    }
    case 'cp': {
      const rest = args.filter((arg) => !arg.startsWith('-'));
      return rest.length === 2 && rest.every((arg) => arg.startsWith('/')) ? { kind: 'copy', from: rest[0]!, to: rest[1]! } : undefined;
    }
    default:
      return undefined;
  }
}

/** A user or group database (/etc/passwd, /etc/group) as lines of fields. */
export interface Accounts {
  passwd: string[][];
  group: string[][];
}

/** Parses /etc/passwd and /etc/group texts. */
export function parseAccounts(passwd: string, group: string): Accounts {
  const rows = (text: string): string[][] => text.split('\n').filter((line) => line !== '').map((line) => line.split(':'));
  return { passwd: rows(passwd), group: rows(group) };
}

/** The first id from 100 to 999 (adduser's FIRST_SYSTEM_UID/GID .. LAST) that no row uses. */
function firstFree(rows: string[][], column: number): number {
  const used = new Set(rows.map((row) => Number(row[column])));
  for (let id = 100; id <= 999; id += 1) if (!used.has(id)) return id;
  return 999;
}

/**
 * Applies an adduser or addgroup action to `accounts` as adduser --system does on a
 * fresh system: a user that exists is left alone; a new one gets the first free uid
 * from 100, the group of its own name (--group, first free gid from 100), the
 * --ingroup group, or nogroup; home /nonexistent and shell /usr/sbin/nologin unless
 * given. Returns the user's uid and gid, or undefined for a group.
 */
export function addAccount(accounts: Accounts, action: Extract<ScriptAction, { kind: 'adduser' | 'addgroup' }>): { uid: number; gid: number } | undefined {
  const groupRow = (name: string): string[] | undefined => accounts.group.find((row) => row[0] === name);
  const addGroup = (name: string): string[] => {
    const known = groupRow(name);
    if (known !== undefined) return known;
    const row = [name, 'x', String(firstFree(accounts.group, 2)), ''];
    accounts.group.push(row);
    return row;
  };
  if (action.kind === 'addgroup') {
    addGroup(action.name);
    return undefined;
  }
  const known = accounts.passwd.find((row) => row[0] === action.name);
  if (known !== undefined) return { uid: Number(known[2]), gid: Number(known[3]) };
  const uid = firstFree(accounts.passwd, 2);
  const group = action.hasOwnGroup ? addGroup(action.name) : groupRow(action.group ?? 'nogroup') ?? ['nogroup', 'x', '65534', ''];
  accounts.passwd.push([action.name, 'x', String(uid), group[2]!, action.gecos, action.home, action.shell]);
  return { uid, gid: Number(group[2]) };
}
