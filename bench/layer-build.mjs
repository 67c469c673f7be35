// Builds one layer from a folder with redo-ts (collectEntries + writeTar) and prints its diffID.
// Usage: node bench/layer-build.mjs DIR OUT   (OUT may be /dev/null)
import { collectEntries } from '../dist/lib/image/entries.js';
import { writeTar } from '../dist/lib/image/tar.js';

const [dir, out] = process.argv.slice(2);
const result = await writeTar(collectEntries(dir), out, { mtimeSeconds: 0 });
process.stdout.write(`${result.diffId.slice('sha256:'.length)}\n`);
