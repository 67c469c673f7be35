import { describe, expect, it } from 'vitest';
import { integrityOfBytes, parseIntegrity } from '../../../lib/sources/integrity.js';

describe('parseIntegrity', () => {
  const empty256 = 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=';
  const cases: Array<[string, string | undefined]> = [
    [empty256, empty256],
    ['sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==', 'sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=='],
    ['sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=', undefined],
    ['sha256-short=', undefined],
    ['47DEQpj8HBSa', undefined],
  ];
  for (const [text, wanted] of cases) {
    it(`${text.slice(0, 20)}… is ${wanted === undefined ? 'refused' : 'accepted'}`, () => expect(parseIntegrity(text)).toBe(wanted));
  }
  it('integrityOfBytes gives sha256 SRI by default', () => {
    expect(integrityOfBytes(Buffer.alloc(0))).toBe(empty256);
  });
});
