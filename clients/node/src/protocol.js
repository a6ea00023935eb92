// Pure protocol computations of matcher's `ecdh` (docs/PROTOCOL.md §2.4, §2.5, §6). No I/O.
import { createHash } from 'node:crypto';
import sodiumModule from 'libsodium-wrappers-sumo';

export const POINT_BYTES = 32;
export const NONCE_BYTES = 12;
export const MIN_TAG_BYTES = 8;
export const MAX_TAG_BYTES = 32;
export const MIN_LABEL_BYTES = 12 + 32 + 16;
const H2G_DOMAIN = Buffer.from('matcher/v1/h2g\x00', 'latin1');
const OUT_DOMAIN = Buffer.from('matcher/v1/out\x00', 'latin1');
export const LABEL_AD_PREFIX = Buffer.from('matcher/v2/label\x00', 'latin1');
export const WIRE_VERSION = 2;
const PROOF_SEED = Buffer.from('matcher/v2/hit-proof/seed\x00', 'latin1');
const PROOF_CHALLENGE = Buffer.from('matcher/v2/hit-proof/challenge\x00', 'latin1');
const SESSION_CONTEXT = 'matcher/v2/session\x00';
const SETUP_DOMAIN = 'matcher/v1/setup\x00';

let sodium = null;

/** Load libsodium (WebAssembly); call once before anything else. */
export async function ready() {
  await sodiumModule.ready;
  sodium = sodiumModule;
  return sodium;
}

const sha512 = (...parts) => {
  const h = createHash('sha512');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** A uniform non-zero scalar from libsodium's CSPRNG (a fresh session key). */
export function newKey() {
  for (;;) {
    const k = Buffer.from(sodium.crypto_core_ristretto255_scalar_random());
    if (!k.equals(Buffer.alloc(32))) return k;
  }
}

export const invertKey = (k) => Buffer.from(sodium.crypto_core_ristretto255_scalar_invert(k));

/** H(token) = from_hash(SHA-512("matcher/v1/h2g" ‖ 0x00 ‖ token)) — §6.1. */
export function hashToGroup(token) {
  return Buffer.from(sodium.crypto_core_ristretto255_from_hash(sha512(H2G_DOMAIN, token)));
}

/** Refuse anything but a canonical, non-identity 32-byte ristretto255 encoding — §6.2. */
export function checkPoint(p, index) {
  if (!(p instanceof Uint8Array) || p.length !== POINT_BYTES) {
    throw new ProtocolError(`element ${index} is not a 32-byte ristretto255 point`);
  }
  if (p.every((b) => b === 0)) throw new ProtocolError(`element ${index} is the identity point`);
  // bit 255 of a canonical encoding is 0 (RFC 9496 §4.3.1); some libsodium versions ignore it
  if ((p[31] & 0x80) || !sodium.crypto_core_ristretto255_is_valid_point(p)) {
    throw new ProtocolError(`element ${index} is not a valid ristretto255 point encoding`);
  }
}

/** k·P for a checked point P. */
export function multiply(k, p, index = 0) {
  checkPoint(p, index);
  return Buffer.from(sodium.crypto_scalarmult_ristretto255(k, p));
}

/** a·H(t): what the requester sends for token t. */
export const blind = (a, token) => Buffer.from(sodium.crypto_scalarmult_ristretto255(a, hashToGroup(token)));

/** D = SHA-512("matcher/v1/out" ‖ 0x00 ‖ Z): tag = D[0..L), label key = D[32..64) — §6.3. */
export const outputHash = (z) => sha512(OUT_DOMAIN, z);

/** Tag length L for a setup and request size — §6.3. */
export function tagLength(setupSize, requestSize) {
  const pairs = BigInt(Math.max(1, setupSize)) * BigInt(Math.max(1, requestSize));
  let bits = 40;
  if (pairs > 1n) bits += ceilLog2(pairs);
  return Math.min(MAX_TAG_BYTES, Math.max(MIN_TAG_BYTES, Math.ceil(bits / 8)));
}

function ceilLog2(n) {
  // smallest k with 2^k >= n
  let k = 0;
  while ((1n << BigInt(k)) < n) k += 1;
  return k;
}

/** The associated data binding a label to its token: "matcher/v2/label" ‖ 0 ‖ SHA-256(token) — §6.4. */
export const labelAd = (token) => Buffer.concat([LABEL_AD_PREFIX, createHash('sha256').update(token).digest()]);

/** The case reference sealed in `label` under `labelKey` for `token`, or null if it does not open — §6.4. */
export function openLabel(labelKey, label, token) {
  if (label.length < MIN_LABEL_BYTES) return null;
  let plain;
  try {
    plain = sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
      null, label.subarray(NONCE_BYTES), labelAd(token), label.subarray(0, NONCE_BYTES), labelKey);
  } catch {
    return null;
  }
  const n = (plain[0] << 8) | plain[1];
  return n + 2 <= plain.length ? Buffer.from(plain.subarray(2, 2 + n)) : null;
}

/** nonce ‖ ChaCha20-Poly1305(plaintext) (tests only: a real responder draws the nonce at random). */
export function sealLabelWithNonce(labelKey, plaintext, nonce, token) {
  const ct = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, labelAd(token), null, nonce, labelKey);
  return Buffer.concat([nonce, Buffer.from(ct)]);
}

/** Setup id: first 32 hex digits of SHA-256("matcher/v1/setup" ‖ 0 ‖ L ‖ 0 ‖ tag_i ‖ label_i …) — §6.4. */
export function setupId(tagLen, tags, labels) {
  const h = createHash('sha256');
  h.update(Buffer.from(`${SETUP_DOMAIN}${tagLen}\x00`, 'latin1'));
  for (let i = 0; i < tags.length; i += 1) {
    h.update(tags[i]);
    if (labels.length) h.update(labels[i]);
  }
  return h.digest('hex').slice(0, 32);
}

/** Canonical JSON of the key spec (§2.5): fixed key order, ASCII only. */
export function keySpecCanonicalJson(normVersion, keys) {
  const spec = { token_prefix: 'matcher/v1/', norm_version: normVersion, keys };
  if (normVersion !== 'n1') spec.max_alternatives = 4;
  return JSON.stringify(spec).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export const keySpecFingerprint = (normVersion, keys) =>
  createHash('sha256').update(keySpecCanonicalJson(normVersion, keys), 'ascii').digest('hex');

/** JSON with sorted object keys, no whitespace, non-ASCII as itself (§2.4). */
export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Conformance digest of a normalisation vector file with its committed outputs (§2.4). */
export function normConformanceDigest(doc) {
  const body = {
    format: doc.format,
    norm_version: doc.norm_version,
    key_spec: doc.key_spec,
    vectors: doc.vectors.map((v) => {
      const out = { id: v.id, date_order: v.date_order, record: v.record };
      for (const k of ['fields', 'tokens', 'error']) if (k in v) out[k] = v[k];
      return out;
    }),
  };
  return createHash('sha256').update(canonicalJson(body), 'utf8').digest('hex');
}

/** x·y mod ℓ. */
export const scalarMul = (x, y) => Buffer.from(sodium.crypto_core_ristretto255_scalar_mul(x, y));

/** A scalar from 64 bytes: SHA-512(data) reduced mod ℓ. */
const hashScalar = (...parts) => Buffer.from(sodium.crypto_core_ristretto255_scalar_reduce(sha512(...parts)));

/** What a hit report's proof is bound to: "matcher/v2/session" ‖ 0 ‖ session id (§6.6). */
export const hitProofContext = (sessionId) => Buffer.from(`${SESSION_CONTEXT}${sessionId}`, 'latin1');

/** (seed, M, Z): M = Σ d_k·P_k, Z = Σ d_k·Z_k, d_k = H(seed ‖ uint64_be(k)) (§6.6). */
export function combineHitPairs(pairs, context) {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(context.length);
  const seed = sha512(PROOF_SEED, len, context, ...pairs.flatMap(([p, z]) => [p, z]));
  let m = null;
  let z = null;
  pairs.forEach(([pk, zk], k) => {
    const idx = Buffer.alloc(8);
    idx.writeBigUInt64BE(BigInt(k));
    const d = hashScalar(seed, idx);
    const dp = Buffer.from(sodium.crypto_scalarmult_ristretto255(d, pk));
    const dz = Buffer.from(sodium.crypto_scalarmult_ristretto255(d, zk));
    m = m ? Buffer.from(sodium.crypto_core_ristretto255_add(m, dp)) : dp;
    z = z ? Buffer.from(sodium.crypto_core_ristretto255_add(z, dz)) : dz;
  });
  return { seed, m, z };
}

/**
 * Proof that one scalar `a` gives Z_k = a·P_k for every pair (batched Schnorr, §6.6): e ‖ s.
 * `r` is a fresh random scalar (a test may pass a fixed one); empty without pairs.
 */
export function proveHits(a, pairs, context, r = newKey()) {
  if (!pairs.length) return Buffer.alloc(0);
  const { seed, m, z } = combineHitPairs(pairs, context);
  const t = Buffer.from(sodium.crypto_scalarmult_ristretto255(r, m));
  const e = hashScalar(PROOF_CHALLENGE, seed, m, z, t);
  const s = Buffer.from(sodium.crypto_core_ristretto255_scalar_sub(r, sodium.crypto_core_ristretto255_scalar_mul(e, a)));
  return Buffer.concat([e, s]);
}

/** A peer broke the protocol (bad point, wrong order, lying sizes). */
export class ProtocolError extends Error {}

/** The responder's replies are not what the protocol makes it compute (a false hit was prevented). */
export class ResponderMisbehaved extends Error {}
