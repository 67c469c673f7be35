// examples/express-app and examples/flask-app: an app with its own lock file
// (package-lock.json from the npm registry, a hashed requirements.txt from the
// machine's pip index) and its image project in deploy/. Each is built, run by podman,
// built again from a second copy elsewhere (other umask) to the same bytes, and its SBOM
// validates and names every dependency with purl and licence. The installs run in the
// build sandbox with the example's own locked tools (npm.spec.yaml: Debian's nodejs and
// npm; pip.spec.yaml: Debian's python3 and pip), named in deps.spec.yaml's build-requires. The source cache is the
// shared one ($REDO_TS_CACHE or ~/.cache/redo-ts).
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createPrivatePodman } from '../helpers/clients.js';
import { refreshVanishedLocks } from '../helpers/deb-locks.js';
import { repoRoot, runCli } from '../helpers/rig.js';
import { cycloneDxProblems, spdxProblems } from '../helpers/sbom-validators.js';
import { sha256Of } from '../helpers/tutorial.js';

type Json = Record<string, any>;

const podman = createPrivatePodman();
const copies: string[] = [];
afterAll(() => {
  podman.remove();
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

/** A copy of examples/NAME as a clone has it (symlinks kept as written), with rules/ in deploy/. */
function copyExample(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `redo-ts-${name}-`));
  copies.push(dir);
  cpSync(join(repoRoot, 'examples', name), dir, { recursive: true, verbatimSymlinks: true });
  cpSync(join(repoRoot, 'rules'), join(dir, 'deploy', 'rules'), { recursive: true });
  return join(dir, 'deploy');
}

const buildTimeoutMs = 600_000;

/** The pip index the machine's configuration names must hold the example's wheels; when it cannot, say so. */
function pipCanReachFlask(): string | undefined {
  const probe = spawnSync('python3', ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', '--dest', mkdtempSync(join(tmpdir(), 'redo-ts-pip-probe-')), 'flask==3.1.3'], { encoding: 'utf8', timeout: 120_000 });
  return probe.status === 0 ? undefined : `pip cannot fetch flask==3.1.3 with this machine's configuration: ${probe.stderr.trim().split('\n').slice(-1)[0]}`;
}

for (const example of [
  { name: 'express-app', image: 'localhost/examples/express-app:1', tar: 'targets/express.tar', greeting: '200 Hello from express 4.21.2\n', lockLayer: 'node', dependency: { name: 'express', purl: 'pkg:npm/express@4.21.2', licence: 'MIT' }, count: 72 },
  { name: 'flask-app', image: 'localhost/examples/flask-app:1', tar: 'targets/flask.tar', greeting: '200 Hello from Flask 3.1.3\n', lockLayer: 'python', dependency: { name: 'flask', purl: 'pkg:pypi/flask@3.1.3', licence: 'BSD-3-Clause' }, count: 7 },
]) {
  describe(`examples/${example.name}`, () => {
    const skipReason = example.name === 'flask-app' ? pipCanReachFlask() : undefined;
    if (skipReason !== undefined) console.log(`skipped: ${skipReason}`);
    let first: string;

    it.skipIf(skipReason !== undefined)('builds from its lock files and podman runs it', async () => {
      first = copyExample(example.name);
      // The committed Debian locks may name versions a point release has since removed (deb-locks.ts).
      refreshVanishedLocks(first, `examples/${example.name}/deploy`);
      const build = await runCli(first, []);
      expect(build.code, build.stderr).toBe(0);
      expect(podman.podman(['load', '-i', join(first, example.tar)]).stdout).toContain(`Loaded image: ${example.image}`);
      expect(podman.podman(['run', ...podman.runArgs, example.image]).stdout).toBe(example.greeting);
    }, buildTimeoutMs);

    it.skipIf(skipReason !== undefined)('builds byte-identical from a second copy elsewhere, with another umask', async () => {
      const second = copyExample(example.name);
      // Every Debian lock the first copy refreshed: the runtime's, the build environment's, the install tools'.
      for (const name of readdirSync(join(first, 'targets')).filter((file) => file.endsWith('.lock.yaml'))) {
        cpSync(join(first, 'targets', name), join(second, 'targets', name));
      }
      const build = await runCli(second, [], { umask: '077' });
      expect(build.code, build.stderr).toBe(0);
      for (const layer of [`targets/${example.lockLayer}.fragment.tar`, 'targets/deps.fragment.tar', 'targets/app.fragment.tar', example.tar]) {
        expect(sha256Of(join(second, layer)), layer).toBe(sha256Of(join(first, layer)));
      }
    }, buildTimeoutMs);

    it.skipIf(skipReason !== undefined)('has an SBOM both validators accept, naming every dependency with purl and licence', async () => {
      const spdxRun = await runCli(first, ['sbom', example.tar]);
      expect(spdxRun.code, spdxRun.stderr).toBe(0);
      expect(spdxProblems(spdxRun.stdout)).toEqual([]);
      const cdxRun = await runCli(first, ['sbom', '--format', 'cyclonedx', example.tar]);
      expect(cdxRun.code, cdxRun.stderr).toBe(0);
      expect(await cycloneDxProblems(cdxRun.stdout)).toEqual([]);
      const bom = JSON.parse(cdxRun.stdout) as Json;
      const ecosystem = example.dependency.purl.split('/')[0]!;
      const libraries = bom.components.filter((component: Json) => component.purl?.startsWith(`${ecosystem}/`));
      expect(libraries.length).toBe(example.count);
      for (const library of libraries) expect(library.purl, library.name).toMatch(/@/);
      expect(libraries.filter((library: Json) => library.licenses === undefined).map((library: Json) => library.name)).toEqual([]);
      expect(libraries.find((library: Json) => library.name === example.dependency.name)).toMatchObject({ purl: example.dependency.purl, licenses: [{ expression: example.dependency.licence }] });
      const contains = await runCli(first, ['contains', example.dependency.name]);
      expect(contains.code, contains.stderr).toBe(0);
      expect(contains.stdout).toContain('targets/deps.fragment.tar');
      expect(readFileSync(join(first, example.tar)).length).toBeGreaterThan(0);
    }, buildTimeoutMs);
  });
}
