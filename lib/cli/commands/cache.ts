/** `redo-ts cache add FILE.deb...`: import packages into the download cache for offline and air-gapped builds. */

import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { RedoError } from '../../errors.js';
import { addDebsToCache } from '../../sources/debian/fetch.js';
import { cacheDirFrom } from '../../sources/store.js';

const usage = `usage: redo-ts cache add FILE.deb...

Puts each .deb into the content-addressed download cache ($REDO_TS_CACHE, else
~/.cache/redo-ts) under its sha256 integrity, which is what lock files and deb:
pins name, so a build finds it without apt or a network. Prints each package's
name, version, architecture and integrity. A build still checks the bytes against
the lock and the package's control fields before using them.`;

const command: Command = {
  summary: 'import .deb files into the download cache (cache add FILE.deb...) for offline builds',
  usage,
  async run(args, io) {
    const [action, ...files] = args;
    if (action !== 'add' || files.length === 0 || files.some((file) => file.startsWith('-'))) {
      throw new RedoError('ERR_USAGE', `redo: "cache": ${action === undefined ? 'missing action' : action !== 'add' ? `unknown action "${action}"` : 'no .deb files named'}`, { hint: usage.split('\n')[0] });
    }
    const cacheDir = cacheDirFrom(io.env);
    const added = await addDebsToCache(files.map((file) => resolve(io.cwd, file)), cacheDir);
    for (const deb of added) io.stdout.write(`${deb.name} ${deb.version} ${deb.architecture} ${deb.integrity}\n`);
    io.stderr.write(`redo-ts cache: ${added.length} package${added.length === 1 ? '' : 's'} added to ${cacheDir}\n`);
    return 0;
  },
};
export default command;
