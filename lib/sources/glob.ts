/** Path globs for spec `files`, `include` and `exclude`: `*`, `?`, `[…]` and `**`. */

/**
 * Compiles `pattern` into a predicate over absolute image paths (`/usr/bin/ls`).
 * `*` and `?` never cross a `/`; `**` as a whole segment matches any number of
 * segments, so `/usr/share/doc/**` matches `/usr/share/doc` itself and everything
 * below it. `[abc]`/`[!abc]` are character classes. Anything else is literal.
 * A pattern without wildcards matches exactly that path.
 */
export function compileGlob(pattern: string): (path: string) => boolean {
  const normalised = normaliseImagePath(pattern);
  let source = '^';
  const segments = normalised.split('/').slice(1);
  segments.forEach((segment) => {
    if (segment === '**') {
      // `/**` consumes "" or "/anything…"; a trailing `/**` therefore also matches the folder.
      source += '(?:/.*)?';
      return;
    }
    source += '/';
    for (let i = 0; i < segment.length; i += 1) {
      const char = segment[i]!;
      if (char === '*') source += '[^/]*';
      else if (char === '?') source += '[^/]';
      else if (char === '[') {
        const close = segment.indexOf(']', i + 2);
        if (close < 0) {
          source += '\\[';
          continue;
        }
        let body = segment.slice(i + 1, close);
        const isNegated = body.startsWith('!');
        if (isNegated) body = body.slice(1);
        source += `[${isNegated ? '^/' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
        i = close;
      } else source += char.replace(/[.+^${}()|\\]/g, '\\$&');
    }
  });
  if (normalised === '/') source = '^/';
  const regex = new RegExp(`${source}$`, 's');
  return (path: string) => regex.test(path);
}

/**
 * Normalises an image path: one leading `/`, no trailing `/`, no `.` or empty
 * segments. Does not resolve `..` (callers refuse it).
 */
export function normaliseImagePath(path: string): string {
  const segments = path.split('/').filter((segment) => segment !== '' && segment !== '.');
  return `/${segments.join('/')}`;
}
