/** The Java keystore ca-certificates-java's trigger builds (/etc/ssl/certs/java/cacerts), written by redo-ts in Java's JKS format without running Java, and read back for comparisons. */

import { createHash } from 'node:crypto';

/** One trusted certificate of a keystore: its alias and DER bytes. */
export interface TrustedCertificate {
  alias: string;
  der: Buffer;
}

/** The DER bytes of the first certificate of a PEM text, or undefined when it holds none. */
export function firstCertificateOfPem(text: string): Buffer | undefined {
  const found = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(text);
  return found === null ? undefined : Buffer.from(found[1]!.replace(/\s+/g, ''), 'base64');
}

/*
 * JKS, as sun.security.provider.JavaKeyStore.engineStore writes it (all numbers big-endian):
 *   u4 0xFEEDFEED  u4 version 2  u4 entry count
 *   per trusted-certificate entry:
 *     u4 tag 2   u2 length + alias (modified UTF-8)   u8 creation time (ms since 1970)
 *     u2 length + "X.509"   u4 length + certificate (DER)
 *   20 bytes: SHA-1 over the password's UTF-16BE bytes, the UTF-8 bytes of "Mighty Aphrodite",
 *   then everything above
 */
/**
 * A JKS keystore holding `certificates` as trusted-certificate entries, as keytool and
 * ca-certificates-java write one, with the creation time of every entry `mtimeSeconds`
 * (where Java writes the clock's) and the entries sorted by alias (where Java writes them
 * in its hash table's order): so the same certificates give the same bytes. Aliases are
 * lowercased, as JKS stores them. `password` keys the integrity digest (`changeit`).
 */
export function writeJavaKeystore(certificates: readonly TrustedCertificate[], password: string, mtimeSeconds: number): Buffer {
  const utf = (text: string): Buffer => {
    const bytes = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const u4 = (value: number): Buffer => {
    const bytes = Buffer.alloc(4);
    bytes.writeUInt32BE(value);
    return bytes;
  };
  const time = Buffer.alloc(8);
  time.writeBigUInt64BE(BigInt(mtimeSeconds) * 1000n);
  const byAlias = new Map(certificates.map((certificate) => [certificate.alias.toLowerCase(), certificate.der]));
  const parts = [u4(0xfeedfeed), u4(2), u4(byAlias.size)];
  for (const alias of [...byAlias.keys()].sort()) {
    const der = byAlias.get(alias)!;
    parts.push(u4(2), utf(alias), time, utf('X.509'), u4(der.length), der);
  }
  const body = Buffer.concat(parts);
  const digest = createHash('sha1').update(Buffer.from(password, 'utf16le').swap16()).update('Mighty Aphrodite', 'utf8').update(body).digest();
  return Buffer.concat([body, digest]);
}

/** The trusted certificates of a JKS keystore, in file order; undefined when the bytes are not one (or hold other kinds of entries). */
export function readJavaKeystore(bytes: Buffer): TrustedCertificate[] | undefined {
  if (bytes.length < 12 || bytes.readUInt32BE(0) !== 0xfeedfeed) return undefined;
  const count = bytes.readUInt32BE(8);
  const out: TrustedCertificate[] = [];
  let at = 12;
  try {
    for (let i = 0; i < count; i += 1) {
      if (bytes.readUInt32BE(at) !== 2) return undefined;
      const aliasLength = bytes.readUInt16BE(at + 4);
      const alias = bytes.subarray(at + 6, at + 6 + aliasLength).toString('utf8');
      at += 6 + aliasLength + 8;
      at += 2 + bytes.readUInt16BE(at);
      const derLength = bytes.readUInt32BE(at);
      out.push({ alias, der: bytes.subarray(at + 4, at + 4 + derLength) });
      at += 4 + derLength;
    }
  } catch {
    return undefined;
  }
  return out;
}
