// Debian copyright files to SPDX licence expressions: names mapped, precedence kept,
// unknown names as defined LicenseRefs, non-machine-readable files derived as scanners do.
import { describe, expect, it } from 'vitest';
import parseSpdxExpression from 'spdx-expression-parse';
import { licenceOfCopyright, spdxOfDebianExpression, spdxOfDebianLicence } from '../../../lib/inventory/licence.js';

describe('spdxOfDebianLicence', () => {
  it.each([
    ['GPL-2', 'GPL-2.0-only'],
    ['GPL-2+', 'GPL-2.0-or-later'],
    ['GPL-3.0+', 'GPL-3.0-or-later'],
    ['LGPL-2.1', 'LGPL-2.1-only'],
    ['LGPL-2.1+', 'LGPL-2.1-or-later'],
    ['AGPL-3', 'AGPL-3.0-only'],
    ['GFDL-NIV-1.3', 'GFDL-1.3-no-invariants-only'],
    ['Expat', 'MIT'],
    ['BSD-3-clause', 'BSD-3-Clause'],
    ['BSD-4-clause-UC', 'BSD-4-Clause-UC'],
    ['PSF-2', 'PSF-2.0'],
    ['Zlib', 'Zlib'],
    ['GPL-2+ with Autoconf exception', 'GPL-2.0-or-later WITH Autoconf-exception-2.0'],
    ['GPL-3+ with GCC exception', 'GPL-3.0-or-later WITH GCC-exception-3.1'],
    // SPDX ids in Debian's spelling: a short version, another case.
    ['Apache-2', 'Apache-2.0'],
    ['MPL-2', 'MPL-2.0'],
    ['CC-BY-3.0', 'CC-BY-3.0'],
    ['CC-BY-SA-4', 'CC-BY-SA-4.0'],
    ['Sleepycat', 'Sleepycat'],
    ['MS-PL', 'MS-PL'],
    ['Beerware', 'Beerware'],
    ['0BSD', '0BSD'],
  ])('maps Debian "%s" to SPDX "%s"', (debian, spdx) => {
    expect(spdxOfDebianLicence(debian)).toEqual({ expression: spdx });
    expect(() => parseSpdxExpression(spdx)).not.toThrow();
  });

  it.each([
    ['public-domain', 'LicenseRef-public-domain'],
    ['BSD-3-clause-Cambridge with BINARY LIBRARY-LIKE PACKAGES exception', 'LicenseRef-BSD-3-clause-Cambridge-with-BINARY-LIBRARY-LIKE-PACKAGES-exception'],
    ['permissive/other', 'LicenseRef-permissive-other'],
  ])('turns "%s", which SPDX does not list, into %s', (debian, ref) => {
    expect(spdxOfDebianLicence(debian)).toEqual({ expression: ref, ref });
    expect(() => parseSpdxExpression(ref)).not.toThrow();
  });
});

describe('spdxOfDebianExpression', () => {
  it.each([
    ['GPL-2+ or Artistic', 'GPL-2.0-or-later OR Artistic-1.0-Perl'],
    ['GPL-2+ and BSD-3-clause', 'GPL-2.0-or-later AND BSD-3-Clause'],
    // A comma binds loosest: (A or B), and C.
    ['GPL-2+ or LGPL-3+, and GPL-3+', '(GPL-2.0-or-later OR LGPL-3.0-or-later) AND GPL-3.0-or-later'],
  ])('keeps the structure of "%s"', (debian, spdx) => {
    const refs = new Set<string>();
    expect(spdxOfDebianExpression(debian, refs)).toBe(spdx);
    expect(refs.size).toBe(0);
    expect(() => parseSpdxExpression(spdx)).not.toThrow();
  });
});

describe('licenceOfCopyright', () => {
  const machineReadable = [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: example',
    '',
    'Files: *',
    'Copyright: 2020 Someone',
    'License: GPL-3+',
    '',
    'Files: lib/*',
    'Copyright: 2020 Someone',
    'License: GPL-3+ and ISC',
    '',
    'Files: doc/*',
    'License: public-domain',
    '',
    'License: public-domain',
    ' The files are in the public domain.',
    '',
  ].join('\n');

  it('joins the distinct licences of the Files paragraphs with AND and defines each LicenseRef', () => {
    expect(licenceOfCopyright(machineReadable, '/usr/share/doc/example/copyright')).toEqual({
      expression: 'GPL-3.0-or-later AND ISC AND LicenseRef-public-domain',
      evidence: '/usr/share/doc/example/copyright',
      refs: [{ id: 'LicenseRef-public-domain', name: 'public-domain', text: 'The files are in the public domain.' }],
    });
  });

  it.each([
    // libc6's: the licences it names, each with its "any later version" grant.
    ['The GNU C Library is free software; you can redistribute it and/or\nmodify it under the terms of the GNU Lesser General Public\nLicense as published by the Free Software Foundation; either\nversion 2.1 of the License, or (at your option) any later version.\n\nOn Debian systems, the complete text of the GNU Library\nGeneral Public License can be found in `/usr/share/common-licenses/LGPL-2.1\'.\n\nThe utilities are under the GNU General Public License as\npublished by the Free Software Foundation; either version 2 of the\nLicense, or (at your option) any later version.\n\nSee /usr/share/common-licenses/GPL-2.\n',
      'LGPL-2.1-or-later AND GPL-2.0-or-later'],
    // base-files': a versionless common-licenses reference takes the version the text names.
    ['This program is free software; you can redistribute it and/or modify\nit under the terms of the GNU General Public License as published by\nthe Free Software Foundation; either version 2, or (at your option)\nany later version.\n\nOn Debian systems, the complete text of the GNU General\nPublic License can be found in `/usr/share/common-licenses/GPL\'.\n', 'GPL-2.0-or-later'],
    // A bare reference: the version it names, no grant claimed.
    ['Licensed under the Apache License; see /usr/share/common-licenses/Apache-2.0 and /usr/share/common-licenses/GPL-2.\n', 'Apache-2.0 AND GPL-2.0-only'],
    ['The overall license is the GNU Lesser General Public\nLicense, version 2.1 (or, at your option, any later version).\n', 'LGPL-2.1-or-later'],
  ])('derives from a copyright file that is not machine-readable what scanners derive (%#)', (text, expression) => {
    const finding = licenceOfCopyright(text, '/usr/share/doc/x/copyright');
    expect(finding.expression).toBe(expression);
    expect(finding.evidence).toContain('not machine-readable: derived from');
    expect(() => parseSpdxExpression(expression)).not.toThrow();
  });

  it('claims nothing from a copyright file that names no licence, or from none', () => {
    expect(licenceOfCopyright('This package was debianized by someone.\n\nIt is GPL.\n', '/usr/share/doc/x/copyright').expression).toBe('NOASSERTION');
    expect(licenceOfCopyright(undefined, '/usr/share/doc/x/copyright')).toEqual({ expression: 'NOASSERTION', evidence: 'no /usr/share/doc/x/copyright in the package', refs: [] });
  });
});
