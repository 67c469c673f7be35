/** `redo-ts key generate [--out PREFIX]`: make an ECDSA P-256 signing key pair in PEM. */

import * as path from 'node:path';
import { passphraseVariable, writeSigningKeyPair } from '../../attest/key.js';
import { RedoError } from '../../errors.js';
import type { Command } from '../command.js';

const usage = `Usage: redo-ts key generate [--out PREFIX]

Makes an ECDSA P-256 key pair for signing pushed images and their provenance:
PREFIX.key, the private key (PKCS#8 PEM, mode 0600), and PREFIX.pub, the public key
(PEM), which consumers name in containers-policy.json (sigstoreSigned keyPath) or give
to cosign verify --key. PREFIX defaults to "redo-ts". Existing files are never
overwritten.

When $${passphraseVariable} is set and not empty, the private key is encrypted with
it (PKCS#8, AES-256-CBC); push --sign then needs the same variable.

  --out PREFIX   where to write (PREFIX.key and PREFIX.pub)`;

const command: Command = {
  summary: 'make an ECDSA P-256 key pair for push --sign (key generate)',
  usage,
  async run(args, io) {
    let prefix = 'redo-ts';
    const positional: string[] = [];
    for (let i = 0; i < args.length; i += 1) {
      const arg = args[i]!;
      if (arg === '--out') {
        const value = args[i + 1];
        if (value === undefined) throw new RedoError('ERR_USAGE', 'redo: "key": --out wants a PREFIX', { hint: usage.split('\n')[0] });
        prefix = value;
        i += 1;
      } else if (arg.startsWith('-')) throw new RedoError('ERR_USAGE', `redo: "key": unknown option ${arg}`, { hint: usage.split('\n')[0] });
      else positional.push(arg);
    }
    if (positional.length !== 1 || positional[0] !== 'generate') {
      throw new RedoError('ERR_USAGE', 'redo: "key": wants the subcommand generate', { details: [`found: ${positional.join(' ') || '(nothing)'}`], hint: usage.split('\n')[0] });
    }
    const passphrase = io.env[passphraseVariable];
    const written = writeSigningKeyPair(path.resolve(io.cwd, prefix), passphrase);
    const shown = (file: string): string => path.relative(io.cwd, file) || file;
    io.stdout.write(`private key: ${shown(written.privateKeyPath)}${passphrase !== undefined && passphrase !== '' ? ` (encrypted with $${passphraseVariable})` : ''}\npublic key:  ${shown(written.publicKeyPath)}\n`);
    return 0;
  },
};
export default command;
