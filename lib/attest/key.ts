/** Signing keys: ECDSA P-256 key pairs in PEM, loading them (with a passphrase), signing and checking bytes. */

import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { RedoError } from '../errors.js';

/** Environment variable holding the passphrase of an encrypted private key. */
export const passphraseVariable = 'REDO_TS_KEY_PASSPHRASE';
/** Environment variable naming the private key `push` signs with when `--sign` is not given (for CI). */
export const signingKeyVariable = 'REDO_TS_SIGNING_KEY';

/** A generated key pair, both halves PEM text. */
export interface KeyPairPem {
  /** PKCS#8 (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` with AES-256-CBC when a passphrase is given). */
  privateKeyPem: string;
  /** SubjectPublicKeyInfo (`PUBLIC KEY`), what cosign and containers-policy.json's `keyPath` read. */
  publicKeyPem: string;
}

/** Makes a fresh ECDSA P-256 key pair; the private key is encrypted when `passphrase` is non-empty. */
export function generateSigningKeyPair(passphrase?: string): KeyPairPem {
  const isEncrypted = passphrase !== undefined && passphrase !== '';
  const { privateKey, publicKey } = generateKeyPairSync('ec', {
    namedCurve: 'P-256',
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: isEncrypted ? { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase } : { type: 'pkcs8', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/**
 * Writes a new key pair to `PREFIX.key` (mode 0600) and `PREFIX.pub` (0644). Refuses
 * (ERR_SIGNING_KEY) when either file exists: a key is never overwritten.
 */
export function writeSigningKeyPair(prefix: string, passphrase?: string): { privateKeyPath: string; publicKeyPath: string } {
  const privateKeyPath = `${prefix}.key`;
  const publicKeyPath = `${prefix}.pub`;
  for (const file of [privateKeyPath, publicKeyPath]) {
    if (existsSync(file)) {
      throw new RedoError('ERR_SIGNING_KEY', `redo: "${file}": exists; a key is never overwritten`, { hint: 'remove it first, or pass --out with another prefix' });
    }
  }
  const pair = generateSigningKeyPair(passphrase);
  writeFileSync(privateKeyPath, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
  writeFileSync(publicKeyPath, pair.publicKeyPem, { mode: 0o644, flag: 'wx' });
  return { privateKeyPath, publicKeyPath };
}

/** A private key ready to sign, with its public half. */
export interface SigningKey {
  path: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/**
 * Reads a PEM private key (PKCS#8, SEC1 or encrypted PKCS#8 with `passphrase`) from
 * `path`. Throws ERR_SIGNING_KEY naming the file when it is missing, unreadable, not an
 * ECDSA P-256 key, or encrypted without (or with the wrong) passphrase.
 */
export function loadSigningKey(path: string, passphrase?: string): SigningKey {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new RedoError('ERR_SIGNING_KEY', `redo: "${path}": cannot read the signing key`, { details: [String((error as Error).message)], hint: 'make one with redo-ts key generate', cause: error });
  }
  const isEncrypted = pem.includes('ENCRYPTED PRIVATE KEY');
  if (isEncrypted && (passphrase === undefined || passphrase === '')) {
    throw new RedoError('ERR_SIGNING_KEY', `redo: "${path}": the signing key is encrypted and no passphrase was given`, { hint: `set ${passphraseVariable}` });
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(isEncrypted ? { key: pem, format: 'pem', passphrase } : { key: pem, format: 'pem' });
  } catch (error) {
    throw new RedoError('ERR_SIGNING_KEY', `redo: "${path}": not a usable private key${isEncrypted ? ' (wrong passphrase?)' : ''}`, {
      details: [String((error as Error).message)],
      hint: isEncrypted ? `check ${passphraseVariable}` : 'name the .key file redo-ts key generate wrote, not the .pub',
      cause: error,
    });
  }
  requireP256(privateKey, path);
  return { path, privateKey, publicKey: createPublicKey(privateKey) };
}

/** Reads a PEM public key (SubjectPublicKeyInfo) from `path`; ERR_SIGNING_KEY when unreadable or not ECDSA P-256. */
export function loadPublicKey(path: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: readFileSync(path, 'utf8'), format: 'pem' });
  } catch (error) {
    throw new RedoError('ERR_SIGNING_KEY', `redo: "${path}": not a readable public key`, { details: [String((error as Error).message)], hint: 'name the .pub file redo-ts key generate wrote', cause: error });
  }
  requireP256(key, path);
  return key;
}

function requireP256(key: KeyObject, path: string): void {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    throw new RedoError('ERR_SIGNING_KEY', `redo: "${path}": not an ECDSA P-256 key`, {
      details: [`wanted: ec prime256v1`, `found:  ${key.asymmetricKeyType ?? '?'} ${curve ?? ''}`.trimEnd()],
      hint: 'make one with redo-ts key generate',
    });
  }
}

/**
 * ECDSA-SHA256 signature of `bytes`, DER-encoded (what cosign, sigstore and `openssl
 * dgst -sha256 -verify` use). ECDSA picks a random nonce: two signatures of the same
 * bytes differ, and both verify.
 */
export function signBytes(key: SigningKey, bytes: Buffer): Buffer {
  return sign('sha256', bytes, key.privateKey);
}

/** True when `signature` (DER ECDSA-SHA256) is a signature of `bytes` by `publicKey`. */
export function verifyBytes(publicKey: KeyObject, bytes: Buffer, signature: Buffer): boolean {
  try {
    return verify('sha256', bytes, publicKey, signature);
  } catch {
    return false;
  }
}
