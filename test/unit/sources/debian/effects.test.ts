import { describe, expect, it } from 'vitest';
import { alternativesEntries, parseAlternatives } from '../../../../lib/sources/debian/effects.js';

const postinst = `#!/bin/sh
set -e
if [ "$1" = configure ]; then
  update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\
    --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\
    --slave /usr/bin/nawk nawk /usr/bin/mawk
  update-alternatives --install /usr/bin/pager pager "$TARGET" 10
fi
`;

describe('alternatives', () => {
  it('reads literal update-alternatives --install calls with their slaves, across continuation lines', () => {
    expect(parseAlternatives(postinst, 'mawk')).toEqual([{
      link: '/usr/bin/awk', name: 'awk', path: '/usr/bin/mawk', priority: 5, package: 'mawk',
      slaves: [
        { link: '/usr/share/man/man1/awk.1.gz', name: 'awk.1.gz', path: '/usr/share/man/man1/mawk.1.gz' },
        { link: '/usr/bin/nawk', name: 'nawk', path: '/usr/bin/mawk' },
      ],
    }]);
  });
  it('picks the highest priority, skips slaves whose target is not shipped, and writes the admin file', () => {
    const installs = [
      ...parseAlternatives(postinst, 'mawk'),
      { link: '/usr/bin/awk', name: 'awk', path: '/usr/bin/gawk', priority: 10, package: 'gawk', slaves: [{ link: '/usr/bin/nawk', name: 'nawk', path: '/usr/bin/gawk' }] },
    ];
    const shipped = new Set(['/usr/bin/mawk', '/usr/bin/gawk']);
    const entries = alternativesEntries(installs, (path) => shipped.has(path), (path) => path.replace(/^\//, ''));
    const shown = entries.map((entry) => `${entry.path.toString()} ${entry.type === 'symlink' ? `-> ${entry.linkTarget!.toString()}` : entry.type}`);
    expect(shown).toEqual([
      'etc/alternatives/awk -> /usr/bin/gawk',
      'usr/bin/awk -> /etc/alternatives/awk',
      'etc/alternatives/nawk -> /usr/bin/gawk',
      'usr/bin/nawk -> /etc/alternatives/nawk',
      'var/lib/dpkg/alternatives/awk file',
    ]);
    const admin = entries.at(-1)!;
    expect(admin.content?.kind === 'buffer' && admin.content.bytes.toString()).toBe(
      'auto\n/usr/bin/awk\nawk.1.gz\n/usr/share/man/man1/awk.1.gz\nnawk\n/usr/bin/nawk\n\n/usr/bin/gawk\n10\n\n/usr/bin/gawk\n/usr/bin/mawk\n5\n/usr/share/man/man1/mawk.1.gz\n/usr/bin/mawk\n\n',
    );
  });
});
