/** `redo-ts init`: write a minimal image project (specs, build environment, image description, app, all.do) into the current folder and lock its build environment. */

import * as fs from 'node:fs';
import * as path from 'node:path';
import { RedoError } from '../../errors.js';
import type { Command } from '../command.js';
import lockCommand from './lock.js';

/** The image tag for a project folder named `folder`: lower case, only characters a reference allows. Pure. */
export function tagFor(folder: string): string {
  const name = folder.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return `localhost/${name === '' ? 'app' : name}:latest`;
}

/** The files `init` writes, relative to the project folder, for the image tagged `tag`. Pure. */
export function projectFiles(tag: string): Array<{ file: string; text: string; mode: number }> {
  return [
    {
      file: 'all.do',
      mode: 0o644,
      text: '# all: what `redo-ts` with no target builds: the image and its OCI layout.\nredo-ifchange image.tar image.oci.tar\n',
    },
    {
      file: 'image.yaml',
      mode: 0o644,
      text: [
        '# The image: busybox in one layer, the app in another. `redo-ts image.tar` builds it.',
        `tags: [${tag}]`,
        'layers:',
        '  - targets/busybox.fragment.tar',
        '  - targets/hello.fragment.tar',
        'config:',
        '  entrypoint: [/usr/bin/hello]',
        '  env: [PATH=/usr/bin:/bin]',
        '  workingDir: /',
        '',
      ].join('\n'),
    },
    {
      file: 'targets/busybox.spec.yaml',
      mode: 0o644,
      text: [
        "# busybox: a shell for the app, from Debian's statically linked build, pinned by hash.",
        'name: busybox',
        'version: "1.35.0"',
        'sources:',
        '  - url: deb:busybox-static=1:1.35.0-4+deb12u1+b1?arch=amd64',
        '    integrity: sha256-PT/b6R1GYMhz4UsJLCE/6BwdpjYtqiNusl0BcesQh0Q=',
        '    include: [/bin/busybox]',
        'build:',
        '  - mkdir -p "$DESTDIR/bin"',
        '  - ln -s busybox "$DESTDIR/bin/sh"',
        'files:',
        '  - path: /bin/sh',
        '',
      ].join('\n'),
    },
    {
      file: 'targets/build-environment.spec.yaml',
      mode: 0o644,
      text: [
        "# build-environment: the only tools build steps get. Each step runs in a sandbox whose /",
        "# is these locked packages (plus the spec's build-requires), read-only, with no network",
        "# and never the host's PATH. Add a package here (coreutils for install, gcc, python3...)",
        '# and run redo-ts lock.',
        'name: build-environment',
        'version: "1"',
        'packages:',
        '  - busybox-static   # sh, cp, ln, mkdir, sed, tar, ... in one static binary',
        'exclude: [/usr/share/doc/**, /usr/share/man/**]',
        '',
      ].join('\n'),
    },
    {
      file: 'targets/hello.spec.yaml',
      mode: 0o644,
      text: [
        "# hello: this project's app, kept in app/ and tracked by content.",
        'name: hello',
        'version: "0.1.0"',
        'sources:',
        '  - url: file:app/hello.sh',
        '    integrity: project',
        'build:',
        '  - mkdir -p "$DESTDIR/usr/bin" && cp hello.sh "$DESTDIR/usr/bin/hello"',
        'files:',
        '  - path: /usr/bin/hello',
        '    mode: "0755"',
        'requires: [busybox]',
        '',
      ].join('\n'),
    },
    {
      file: 'app/hello.sh',
      mode: 0o755,
      text: '#!/bin/sh\n# The app this image runs: edit it and run `redo-ts image.tar` again.\necho "Hello from an image built by redo-ts!"\n',
    },
    {
      file: '.gitignore',
      mode: 0o644,
      text: '.redo/\n*.tar\n*.image.json\n',
    },
  ];
}

const command: Command = {
  summary: 'write a minimal image project here (spec, image.yaml, app, all.do)',
  usage: [
    'Usage: redo-ts init',
    '  Writes all.do, image.yaml, targets/busybox.spec.yaml, targets/hello.spec.yaml,',
    '  targets/build-environment.spec.yaml (the tools of every build step), app/hello.sh',
    '  and .gitignore into the current folder, locks the build environment with',
    '  `redo-ts lock` (reading apt\'s package lists), then: redo-ts image.tar',
    '  Refuses (and writes nothing) if any of them exists.',
  ].join('\n'),
  async run(args, io) {
    if (args.length > 0) throw new RedoError('ERR_USAGE', `redo: "init": takes no arguments`, { details: [`found: ${args.join(' ')}`] });
    const files = projectFiles(tagFor(path.basename(io.cwd)));
    const existing = files.filter(({ file }) => fs.existsSync(path.join(io.cwd, file))).map(({ file }) => file);
    if (existing.length > 0) {
      throw new RedoError('ERR_USAGE', `redo: "init": would overwrite ${existing.length === 1 ? 'a file' : 'files'} of this folder`, {
        details: existing.map((file) => `exists: ${file}`),
        hint: 'run redo-ts init in an empty folder, or move those files aside',
      });
    }
    for (const { file, text, mode } of files) {
      const absolute = path.join(io.cwd, file);
      fs.mkdirSync(path.dirname(absolute), { recursive: true });
      fs.writeFileSync(absolute, text, { mode });
      fs.chmodSync(absolute, mode);
    }
    // Started through npx (npm sets npm_command=exec), the next command needs npx too.
    const redoTs = io.env['npm_command'] === 'exec' ? 'npx redo-ts' : 'redo-ts';
    io.stdout.write(`${files.map(({ file }) => `wrote ${file}`).join('\n')}\n`);
    try {
      await lockCommand.run([path.join(io.cwd, 'targets', 'build-environment.spec.yaml')], io);
    } catch (cause) {
      throw new RedoError('ERR_USAGE', 'redo: "init": wrote the project, but could not lock its build environment', {
        details: [`error: ${(cause as Error).message.split('\n')[0]}`],
        hint: `run ${redoTs} lock once apt's package lists are there (apt-get update), then ${redoTs} image.tar`,
        cause,
      });
    }
    io.stdout.write(`next: ${redoTs} image.tar && podman load -i image.tar && podman run --rm ${tagFor(path.basename(io.cwd))}\n`);
    return 0;
  },
};
export default command;
