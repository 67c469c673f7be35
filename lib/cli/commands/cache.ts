/** `redo-ts cache add FILE.deb...` (import packages for offline and air-gapped builds), `redo-ts cache verify` (check every entry) and `redo-ts cache prune` (drop unused build environments and their kept fragments). */

import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { RedoError } from '../../errors.js';
import { addDebsToCache } from '../../sources/debian/fetch.js';
import { cacheDirFrom, verifyStore } from '../../sources/store.js';
import { pruneBuildEnvironments } from '../../sandbox/environment.js';
import { pruneKeptFragments } from '../../sources/fragment-cache.js';

const usage = `usage: redo-ts cache add FILE.deb...
       redo-ts cache verify
       redo-ts cache prune [--unused-days N]

Puts each .deb into the content-addressed download cache ($REDO_TS_CACHE, else
~/.cache/redo-ts) under its sha256 integrity, which is what lock files and deb:
pins name, so a build finds it without apt or a network. Prints each package's
name, version, architecture and integrity. A build still checks the bytes against
the lock and the package's control fields before using them.

verify hashes every entry of the cache against the hash it is stored under (a
source's pin; a derived entry's recorded integrity), drops the ones that differ or
whose file is gone, and prints them with the wanted and found hash. Exit status 1
when it dropped any.

prune removes the assembled build environments (build-environments/KEY, one per
distinct set of packages and fragments) that no build has used for N days (default
30; 0 removes every one), and what an interrupted assembly left behind. A build
that needs one again assembles it from its fragments. It does the same with the
build environments' kept fragments (environment-fragments/KEY, one per distinct
spec, lock, machine architecture, SOURCE_DATE_EPOCH, layer and redo-ts code), which a build makes again from their packages.
Prints each one removed.`;

const command: Command = {
  summary: 'import .deb files into the download cache (cache add FILE.deb...), check every entry (cache verify), or remove unused build environments and their kept fragments (cache prune)',
  usage,
  async run(args, io) {
    const [action, ...files] = args;
    if (action === 'verify' && files.length === 0) {
      const cacheDir = cacheDirFrom(io.env);
      const { checkedCount, damaged } = await verifyStore(cacheDir);
      for (const entry of damaged) {
        io.stdout.write(`damaged ${entry.key}\n  entry:  ${entry.path}\n  wanted: ${entry.wanted}\n  found:  ${entry.found}\n`);
      }
      io.stderr.write(`redo-ts cache: ${checkedCount} entr${checkedCount === 1 ? 'y' : 'ies'} checked in ${cacheDir}, ${damaged.length} damaged${damaged.length > 0 ? ' and dropped (a build fetches them again)' : ''}\n`);
      return damaged.length > 0 ? 1 : 0;
    }
    if (action === 'prune') {
      const days = files.length === 0 ? 30 : files.length === 2 && files[0] === '--unused-days' && /^[0-9]+$/.test(files[1]!) ? Number(files[1]) : undefined;
      if (days === undefined) throw new RedoError('ERR_USAGE', `redo: "cache": prune takes only --unused-days N (a whole number of days), not "${files.join(' ')}"`, { hint: usage.split('\n')[2]!.trim() });
      const cacheDir = cacheDirFrom(io.env);
      const { removed, leftovers } = pruneBuildEnvironments(cacheDir, days * 24 * 3600 * 1000);
      for (const environment of removed) {
        io.stdout.write(`removed build environment ${environment.key.slice(0, 12)} (${environment.declaredIn.join(', ') || 'unknown specs'}), last used ${new Date(environment.lastUsedMs).toISOString()}\n`);
      }
      io.stderr.write(`redo-ts cache: ${removed.length} build environment${removed.length === 1 ? '' : 's'} unused for ${days} day${days === 1 ? '' : 's'} removed, ${leftovers} interrupted assembl${leftovers === 1 ? 'y' : 'ies'} cleaned, in ${cacheDir}\n`);
      const fragments = pruneKeptFragments(cacheDir, days * 24 * 3600 * 1000);
      for (const fragment of fragments.removed) {
        io.stdout.write(`removed environment fragment ${fragment.key.slice(0, 12)} (${fragment.spec}), last used ${new Date(fragment.lastUsedMs).toISOString()}\n`);
      }
      if (fragments.removed.length > 0 || fragments.leftovers > 0) {
        io.stderr.write(`redo-ts cache: ${fragments.removed.length} environment fragment${fragments.removed.length === 1 ? '' : 's'} unused for ${days} day${days === 1 ? '' : 's'} removed, ${fragments.leftovers} interrupted keep${fragments.leftovers === 1 ? '' : 's'} cleaned\n`);
      }
      return 0;
    }
    if (action !== 'add' || files.length === 0 || files.some((file) => file.startsWith('-'))) {
      throw new RedoError('ERR_USAGE', `redo: "cache": ${action === undefined ? 'missing action' : action !== 'add' && action !== 'verify' ? `unknown action "${action}"` : action === 'verify' ? 'verify takes no arguments' : 'no .deb files named'}`, { hint: usage.split('\n')[0] });
    }
    const cacheDir = cacheDirFrom(io.env);
    const added = await addDebsToCache(files.map((file) => resolve(io.cwd, file)), cacheDir);
    for (const deb of added) io.stdout.write(`${deb.name} ${deb.version} ${deb.architecture} ${deb.integrity}\n`);
    io.stderr.write(`redo-ts cache: ${added.length} package${added.length === 1 ? '' : 's'} added to ${cacheDir}\n`);
    return 0;
  },
};
export default command;
