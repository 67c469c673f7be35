/** DSSE envelopes (secure-systems-lab/dsse v1): the pre-authentication encoding, signing and checking. */

import type { KeyObject } from 'node:crypto';
import { canonicalJson } from '../image/image-config.js';
import { signBytes, verifyBytes, type SigningKey } from './key.js';

/** Payload type of an in-toto statement in an envelope. */
export const inTotoPayloadType = 'application/vnd.in-toto+json';

/** A parsed envelope. */
export interface DsseEnvelope {
  payloadType: string;
  /** Base64 of the payload bytes. */
  payload: string;
  signatures: { keyid: string; sig: string }[];
}

/**
 * The bytes a DSSE signature covers:
 * `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths as ASCII decimal byte counts.
 */
export function preAuthenticationEncoding(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/**
 * An envelope of `payload` signed by `key` (ECDSA-SHA256 over the PAE, DER, base64;
 * keyid empty, as cosign writes it), as canonical JSON bytes. The payload bytes are
 * kept as given; the signature differs at each call (ECDSA's random nonce).
 */
export function signEnvelope(key: SigningKey, payloadType: string, payload: Buffer): Buffer {
  const signature = signBytes(key, preAuthenticationEncoding(payloadType, payload));
  return Buffer.from(canonicalJson({ payload: payload.toString('base64'), payloadType, signatures: [{ keyid: '', sig: signature.toString('base64') }] }));
}

/** Parses envelope bytes; undefined when they are not a DSSE envelope. */
export function parseEnvelope(bytes: Buffer): DsseEnvelope | undefined {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as Partial<DsseEnvelope>;
    if (typeof parsed.payloadType !== 'string' || typeof parsed.payload !== 'string' || !Array.isArray(parsed.signatures)) return undefined;
    return parsed as DsseEnvelope;
  } catch {
    return undefined;
  }
}

/** True when some signature of the envelope verifies with `publicKey` over its PAE. */
export function verifyEnvelope(envelope: DsseEnvelope, publicKey: KeyObject): boolean {
  const encoded = preAuthenticationEncoding(envelope.payloadType, Buffer.from(envelope.payload, 'base64'));
  return envelope.signatures.some((s) => verifyBytes(publicKey, encoded, Buffer.from(s.sig, 'base64')));
}
