// DSSE's pre-authentication encoding and envelopes, and the provenance statement's bytes.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseEnvelope, preAuthenticationEncoding, signEnvelope, verifyEnvelope } from '../../../lib/attest/dsse.js';
import { provenanceStatement, type ProvenanceInput } from '../../../lib/attest/provenance.js';
import type { SigningKey } from '../../../lib/attest/key.js';

const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const key: SigningKey = { path: 'test.key', privateKey: pair.privateKey, publicKey: pair.publicKey };

describe('DSSE', () => {
  it.each([
    // The example of the DSSE v1 protocol document.
    ['http://example.com/HelloWorld', 'hello world', 'DSSEv1 29 http://example.com/HelloWorld 11 hello world'],
    ['application/vnd.in-toto+json', '', 'DSSEv1 28 application/vnd.in-toto+json 0 '],
    // Lengths count bytes, not characters.
    ['t', 'é', 'DSSEv1 1 t 2 é'],
  ])('PAE(%j, %j) is %j', (type, body, expected) => {
    expect(preAuthenticationEncoding(type, Buffer.from(body, 'utf8')).toString('utf8')).toBe(expected);
  });

  it('an envelope verifies with its key, and not once its payload or type is changed', () => {
    const envelope = parseEnvelope(signEnvelope(key, 'application/vnd.in-toto+json', Buffer.from('{"a":1}')))!;
    expect(verifyEnvelope(envelope, key.publicKey)).toBe(true);
    expect(verifyEnvelope({ ...envelope, payload: Buffer.from('{"a":2}').toString('base64') }, key.publicKey)).toBe(false);
    expect(verifyEnvelope({ ...envelope, payloadType: 'text/plain' }, key.publicKey)).toBe(false);
    expect(verifyEnvelope(envelope, generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)).toBe(false);
  });
});

describe('provenanceStatement', () => {
  const input: ProvenanceInput = {
    target: 'image.oci.tar',
    manifestDigest: `sha256:${'a'.repeat(64)}`,
    sourceDateEpoch: 1700000000,
    redoVersion: '1.2.3',
    gitCommit: 'b'.repeat(40),
    materials: [
      { name: 'rules/default.tar.do.ts', digest: { sha256: '1'.repeat(64) } },
      { name: 'deb:busybox-static', uri: 'deb:busybox-static=1:1.35.0-4?arch=amd64', digest: { sha256: '2'.repeat(64) }, annotations: { version: '1:1.35.0-4' } },
      { name: 'app.yaml', digest: { sha256: '3'.repeat(64) } },
    ],
  };

  it('gives the same bytes whatever order the materials come in, sorted by name after the commit', () => {
    const a = provenanceStatement(input);
    const b = provenanceStatement({ ...input, materials: [...input.materials].reverse() });
    expect(b.equals(a)).toBe(true);
    const parsed = JSON.parse(a.toString('utf8'));
    expect(parsed.predicate.buildDefinition.resolvedDependencies.map((d: { name: string }) => d.name)).toEqual(['project', 'app.yaml', 'deb:busybox-static', 'rules/default.tar.do.ts']);
    expect(parsed.predicate.buildDefinition.internalParameters).toEqual({ SOURCE_DATE_EPOCH: '1700000000' });
  });

  it('is canonical JSON: sorted keys, no whitespace, no time or id fields', () => {
    const text = provenanceStatement(input).toString('utf8');
    expect(text.startsWith('{"_type":"https://in-toto.io/Statement/v1","predicate":{"buildDefinition":{"buildType":')).toBe(true);
    expect(text).not.toMatch(/\s/);
    expect(text).not.toMatch(/startedOn|finishedOn|invocationId/);
  });

  it('marks a commit whose work tree had changes to tracked files', () => {
    const parsed = JSON.parse(provenanceStatement({ ...input, isTreeDirty: true }).toString('utf8'));
    expect(parsed.predicate.buildDefinition.resolvedDependencies[0]).toEqual({ name: 'project', uri: 'git+commit', digest: { gitCommit: 'b'.repeat(40) }, annotations: { 'redo-ts.tree': 'modified' } });
  });
});
