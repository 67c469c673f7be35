// Signing keys: generated pairs sign bytes that openssl verifies; encrypted keys need their passphrase.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadPublicKey, loadSigningKey, signBytes, verifyBytes, writeSigningKeyPair } from '../../../lib/attest/key.js';
import { runTool } from '../../helpers/clients.js';

const dir = mkdtempSync(join(tmpdir(), 'redo-ts-key-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('signing keys', () => {
  it('a generated pair signs bytes that openssl dgst -verify accepts with the .pub, and the .key is mode 0600', () => {
    const { privateKeyPath, publicKeyPath } = writeSigningKeyPair(join(dir, 'plain'));
    expect(statSync(privateKeyPath).mode & 0o777).toBe(0o600);
    expect(readFileSync(publicKeyPath, 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const key = loadSigningKey(privateKeyPath);
    const message = Buffer.from('hello');
    const signature = signBytes(key, message);
    expect(verifyBytes(loadPublicKey(publicKeyPath), message, signature)).toBe(true);
    expect(verifyBytes(loadPublicKey(publicKeyPath), Buffer.from('hellO'), signature)).toBe(false);
    writeFileSync(join(dir, 'message'), message);
    writeFileSync(join(dir, 'message.sig'), signature);
    const checked = runTool('openssl', ['dgst', '-sha256', '-verify', publicKeyPath, '-signature', join(dir, 'message.sig'), join(dir, 'message')]);
    expect(checked.stdout.trim()).toBe('Verified OK');
  });

  it('an encrypted key loads with its passphrase and is refused without it or with another', () => {
    const { privateKeyPath } = writeSigningKeyPair(join(dir, 'enc'), 'secret');
    expect(readFileSync(privateKeyPath, 'utf8')).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    expect(loadSigningKey(privateKeyPath, 'secret').publicKey.asymmetricKeyType).toBe('ec');
    expect(() => loadSigningKey(privateKeyPath)).toThrow(/encrypted and no passphrase was given/);
    expect(() => loadSigningKey(privateKeyPath, 'other')).toThrow(/not a usable private key \(wrong passphrase\?\)/);
  });

  it('never overwrites a key, and refuses a public key where a private one is wanted', () => {
    expect(() => writeSigningKeyPair(join(dir, 'plain'))).toThrow(/exists; a key is never overwritten/);
    expect(() => loadSigningKey(join(dir, 'plain.pub'))).toThrow(/not a usable private key/);
  });
});
