// Registry references, credential files and the cacheable marker: pure functions, table-driven.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isRedoError } from '../../../lib/errors.js';
import { findCredentials } from '../../../lib/registry/credentials.js';
import { isLoopbackHost, parseReference } from '../../../lib/registry/reference.js';
import { cacheableEnvOf } from '../../../lib/registry/remote-cache.js';

const digest = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  it.each([
    ['127.0.0.1:5000/app', { host: '127.0.0.1:5000', repository: 'app', tag: 'latest', digest: undefined }],
    ['registry.example/team/app:1.0', { host: 'registry.example', repository: 'team/app', tag: '1.0', digest: undefined }],
    [`registry.example/team/app@${digest}`, { host: 'registry.example', repository: 'team/app', tag: undefined, digest }],
    [`localhost/app:v2@${digest}`, { host: 'localhost', repository: 'app', tag: 'v2', digest }],
    ['[::1]:5000/a/b-c/d__e', { host: '[::1]:5000', repository: 'a/b-c/d__e', tag: 'latest', digest: undefined }],
  ])('%s parses into host, repository, tag and digest', (text, expected) => {
    expect(parseReference(text)).toEqual({ text, ...expected });
  });

  it.each([
    ['app:latest', 'no registry host: the reference has no "/"'],
    ['HTTP://127.0.0.1:5000/app', 'a reference has no scheme: drop "HTTP://" (plain HTTP is for loopback registries, or --insecure)'],
    ['https://registry.example/app:1', 'a reference has no scheme: drop "https://" (plain HTTP is for loopback registries, or --insecure)'],
    ['team/app', '"team" is not a registry host (a host has a "." or a ":port", or is localhost)'],
    ['registry.example/Team/app', '"Team/app" is not a repository name (lowercase letters, digits and . _ - between /)'],
    ['registry.example/app:bad tag', '"bad tag" is not a valid tag (letters, digits, "_", "." and "-", at most 128)'],
    ['registry.example/app@sha256:abc', '"sha256:abc" is not a digest (sha256: and 64 lowercase hex digits)'],
  ])('%s is refused: %s', (text, problem) => {
    try {
      parseReference(text);
      expect.unreachable();
    } catch (error) {
      expect(isRedoError(error, 'ERR_REGISTRY_REFERENCE')).toBe(true);
      expect((error as { details: string[] }).details).toEqual([problem]);
    }
  });

  it.each([
    ['127.0.0.1:5000', true],
    ['127.1.2.3', true],
    ['localhost:5000', true],
    ['[::1]:5000', true],
    ['registry.example', false],
    ['10.0.0.1:5000', false],
    ['127.0.0.1.example', false],
  ])('%s is loopback: %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});

describe('findCredentials', () => {
  const home = mkdtempSync(join(tmpdir(), 'redo-ts-creds-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));
  const basic = (user: string, password: string) => ({ auth: Buffer.from(`${user}:${password}`).toString('base64') });
  mkdirSync(join(home, '.config/containers'), { recursive: true });
  mkdirSync(join(home, '.docker'), { recursive: true });
  writeFileSync(join(home, '.config/containers/auth.json'), JSON.stringify({ auths: { 'registry.example': basic('host', 'h'), 'registry.example/team': basic('team', 't') } }));
  writeFileSync(join(home, '.docker/config.json'), JSON.stringify({ auths: { 'https://other.example/v1/': { username: 'docker', password: 'd' } } }));
  writeFileSync(join(home, 'override.json'), 'not json');
  const env = { HOME: home, REGISTRY_AUTH_FILE: join(home, 'override.json') };

  it.each([
    ['registry.example', 'team/app', 'team', '.config/containers/auth.json'],
    ['registry.example', 'other/app', 'host', '.config/containers/auth.json'],
    ['other.example', 'app', 'docker', '.docker/config.json'],
  ])('%s/%s: user %s from %s (a repository key beats the host key; URL keys match by host)', (host, repository, user, file) => {
    const found = findCredentials(host, repository, env);
    expect(found.credentials?.username).toBe(user);
    expect(found.credentials?.file).toBe(join(home, file));
  });

  it('lists every file it looked in, the unreadable override first, when nothing matches', () => {
    const found = findCredentials('none.example', 'app', env);
    expect(found.credentials).toBeUndefined();
    expect(found.filesTried).toEqual([join(home, 'override.json'), join(home, '.config/containers/auth.json'), join(home, '.docker/config.json')]);
  });
});

describe('cacheableEnvOf', () => {
  it.each([
    ['// redo-ts: cacheable (shared rule)\nexport default 1', ['SOURCE_DATE_EPOCH']],
    ['#!/bin/sh\n# redo-ts: cacheable env=CC,CFLAGS\ncc -o $3 x.c', ['CC', 'CFLAGS', 'SOURCE_DATE_EPOCH']],
    ['# nothing here\n', undefined],
    ['echo "redo-ts: cacheable" > $3', undefined],
  ])('%j declares %j', (text, expected) => {
    expect(cacheableEnvOf(text)).toEqual(expected);
  });
});
