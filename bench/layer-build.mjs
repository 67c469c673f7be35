// Builds one layer from a folder with redo-ts (collectEntries + writeTar) and prints its diffID.
// With --thread-cpu, prints instead the main thread's CPU seconds and the whole process's
// (utime + stime from /proc): the main thread is the layer write's critical path once the
// hashing and writing run on a worker thread.
// Usage: node bench/layer-build.mjs DIR OUT [--thread-cpu]   (OUT may be /dev/null)
import { readFileSync } from 'node:fs';
import { collectEntries } from '../dist/lib/image/entries.js';
import { writeTar } from '../dist/lib/image/tar.js';

const [dir, out, flag] = process.argv.slice(2);
const result = await writeTar(collectEntries(dir), out, { mtimeSeconds: 0 });
if (flag === '--thread-cpu') {
  const seconds = (path) => {
    const fields = readFileSync(path, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  };
  process.stdout.write(`${seconds(`/proc/self/task/${process.pid}/stat`)} ${seconds('/proc/self/stat')}\n`);
} else {
  process.stdout.write(`${result.diffId.slice('sha256:'.length)}\n`);
}
