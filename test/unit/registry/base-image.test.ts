// configOnBase: what an image inherits from its pinned base's config.
import { describe, expect, it } from 'vitest';
import { configOnBase, type BaseImage } from '../../../lib/registry/base-image.js';
import type { ImageConfig } from '../../../lib/image/image-config.js';

const base = (config: BaseImage['config']['config']): BaseImage => ({
  reference: 'registry.example/os:1@sha256:' + 'b'.repeat(64),
  manifestReference: 'registry.example/os@sha256:' + 'c'.repeat(64),
  manifestDigest: 'sha256:' + 'c'.repeat(64),
  layers: [],
  config: { config },
});
const own: ImageConfig = { architecture: 'amd64', os: 'linux', history: ['redo-ts: layer app.layer.tar'] };

describe('configOnBase', () => {
  it.each<[string, ImageConfig, BaseImage['config']['config'], Partial<ImageConfig>]>([
    ['unset fields come from the base', own, { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'], Env: ['PATH=/bin'], WorkingDir: '/w', User: '1:1', ExposedPorts: { '80/tcp': {} } }, { entrypoint: ['/bin/sh'], cmd: ['-c', 'true'], env: ['PATH=/bin'], workingDir: '/w', user: '1:1', exposedPorts: ['80/tcp'] }],
    ['an own entrypoint drops the base cmd, as Docker does', { ...own, entrypoint: ['/app'] }, { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'] }, { entrypoint: ['/app'], cmd: undefined }],
    ['own fields win, labels merge with own winning', { ...own, env: ['A=1'], labels: { a: 'own' } }, { Env: ['B=2'], Labels: { a: 'base', b: 'base' } }, { env: ['A=1'], labels: { a: 'own', b: 'base' } }],
  ])('%s', (_name, config, from, expected) => {
    const merged = configOnBase(config, base(from));
    for (const [key, value] of Object.entries(expected)) expect(merged[key as keyof ImageConfig]).toEqual(value);
  });

  it('history names each base layer by the base manifest digest, then the own layers', () => {
    const withLayers = { ...base({}), layers: [{}, {}] as BaseImage['layers'] };
    expect(configOnBase(own, withLayers).history).toEqual([
      `redo-ts: base sha256:${'c'.repeat(64)} layer 1`,
      `redo-ts: base sha256:${'c'.repeat(64)} layer 2`,
      'redo-ts: layer app.layer.tar',
    ]);
  });
});
