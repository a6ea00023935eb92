// The protocol conformance vectors (matcher/identity/vectors/protocol.v2.json) in JavaScript.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as P from '../src/protocol.js';
import { distinctTokens, hitRecords } from '../src/client.js';
import { hitsCsv } from '../src/hits.js';

const VECTORS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'matcher', 'identity', 'vectors');
const PROTO = JSON.parse(readFileSync(join(VECTORS, 'protocol.v2.json'), 'utf8'));
const EC = PROTO.ecdh;
const H = (hex) => Buffer.from(hex, 'hex');

await P.ready();

test('ecdh: hash to group, blind, evaluate, unblind, output hash, tag, label', () => {
  const a = H(EC.scalar_a_hex);
  const b = H(EC.scalar_b_hex);
  assert.equal(P.invertKey(a).toString('hex'), EC.scalar_a_inverse_hex);
  for (const v of EC.tokens) {
    const token = Buffer.from(v.token_utf8, 'utf8');
    assert.equal(token.toString('hex'), v.token_hex);
    assert.equal(Buffer.concat([Buffer.from('matcher/v1/h2g\x00', 'latin1'), token]).toString('hex'), v.h2g_input_hex);
    assert.equal(P.hashToGroup(token).toString('hex'), v.h_point_hex);
    const blinded = P.blind(a, token);
    assert.equal(blinded.toString('hex'), v.blinded_hex);
    const evaluated = P.multiply(b, blinded);
    assert.equal(evaluated.toString('hex'), v.evaluated_hex);
    const z = P.multiply(P.invertKey(a), evaluated);
    assert.equal(z.toString('hex'), v.unblinded_hex);
    const d = P.outputHash(z);
    assert.equal(d.toString('hex'), v.output_sha512_hex);
    assert.equal(d.subarray(0, EC.tag_length).toString('hex'), v.tag_hex);
    assert.equal(d.subarray(32).toString('hex'), v.label_key_hex);
    assert.equal(P.labelAd(token).toString('hex'), v.label_ad_hex);
    assert.equal(P.openLabel(d.subarray(32), H(v.label_hex), token).toString('utf8'), v.case_ref_utf8);
    assert.equal(P.openLabel(d.subarray(32), H(v.label_hex), Buffer.from('another token')), null);
    const plain = H(v.label_plaintext_hex);
    assert.equal(plain.length, EC.label_plaintext_bytes);
    assert.equal(P.sealLabelWithNonce(d.subarray(32), plain, H(v.nonce_hex), token).toString('hex'), v.label_hex);
    const other = P.outputHash(P.hashToGroup(Buffer.from('other')));
    assert.equal(P.openLabel(other.subarray(32), H(v.label_hex), token), null);
    assert.equal(P.multiply(a, H(v.cardinality_setup_point_hex)).toString('hex'), v.cardinality_reblinded_hex);
  }
  assert.equal(P.LABEL_AD_PREFIX.toString('hex'), EC.label_ad_prefix_hex);
});

test('ecdh: hit report proof', () => {
  const v = EC.hit_proof;
  const context = P.hitProofContext(v.session_id);
  assert.equal(context.toString('hex'), v.context_hex);
  const pairs = v.pairs.map((x) => [H(x.p_hex), H(x.z_hex)]);
  const { seed, m, z } = P.combineHitPairs(pairs, context);
  assert.equal(seed.toString('hex'), v.seed_hex);
  assert.equal(m.toString('hex'), v.m_hex);
  assert.equal(z.toString('hex'), v.z_hex);
  assert.equal(P.proveHits(H(EC.scalar_a_hex), pairs, context, H(v.nonce_scalar_r_hex)).toString('hex'), v.proof_hex);
  assert.equal(P.proveHits(H(EC.scalar_a_hex), [], context).length, 0);
});

test('ecdh: invalid point encodings are refused', () => {
  const k = P.newKey();
  for (const c of EC.invalid_points) assert.throws(() => P.multiply(k, H(c.point_hex)), P.ProtocolError, c.why);
});

test('ecdh: tag lengths', () => {
  for (const v of EC.tag_lengths) assert.equal(P.tagLength(v.setup_size, v.request_size), v.tag_length);
});

test('ecdh: invalid points are refused', () => {
  const k = P.newKey();
  assert.throws(() => P.multiply(k, Buffer.alloc(32)), /identity/);
  assert.throws(() => P.multiply(k, Buffer.alloc(31, 1)), /32-byte/);
  assert.throws(() => P.multiply(k, Buffer.alloc(32, 0xff)), /not a valid/);
});

test('key spec canonical JSON and fingerprint', () => {
  for (const v of PROTO.key_spec_fingerprints) {
    assert.equal(P.keySpecCanonicalJson(v.norm_version, v.keys), v.canonical_json);
    assert.equal(P.keySpecFingerprint(v.norm_version, v.keys), v.fingerprint);
  }
});

test('keyed-hash tags', () => {
  const secret = H(PROTO.keyed_hash.secret_hex);
  for (const v of PROTO.keyed_hash.tokens) {
    const mac = createHmac('sha256', secret);
    mac.update(Buffer.from('matcher/v1/keyed-hash\x00', 'latin1'));
    mac.update(H(v.token_hex));
    assert.equal(mac.digest('hex'), v.tag_hex);
  }
});

test('paillier token encodings', () => {
  for (const v of PROTO.paillier.tokens) {
    const d = createHash('sha256').update(Buffer.from('matcher/v1/paillier\x00', 'latin1')).update(H(v.token_hex)).digest();
    assert.equal(d.subarray(0, PROTO.paillier.encoding_bytes).toString('hex'), v.encoding_hex);
  }
});

test('normalisation conformance digest is computed over the canonical JSON', () => {
  const doc = JSON.parse(readFileSync(join(VECTORS, 'n2.v1.json'), 'utf8'));
  const digest = P.normConformanceDigest(doc);
  assert.match(digest, /^[0-9a-f]{64}$/);
  doc.vectors[0].tokens[0][1] += 'x';
  assert.notEqual(P.normConformanceDigest(doc), digest);
  assert.equal(P.canonicalJson({ b: [1, 'ä\u001f'], a: null }), '{"a":null,"b":[1,"ä\\u001f"]}');
});

test('hits: one row per (record, case reference), by record, strength, then UTF-8 bytes (docs/hits-file.md)', () => {
  const doc = {
    match_keys: [['document', []], ['names_dob', []], ['names_year', []]],
    records: [
      { record_id: 'r1', tokens: [['document', 't1'], ['names_dob', 't2'], ['names_year', 't4']] },
      { record_id: 'r2', tokens: [['names_dob', 't3']] },
      { record_id: 'r3', tokens: [['document', 't5']] },
    ],
  };
  const { tokens, owners } = distinctTokens(doc);
  assert.deepEqual(tokens.map(String), ['t1', 't2', 't4', 't3', 't5']);
  const result = { tokens, owners, hits: [[1, Buffer.from('C-1')], [2, Buffer.from('C "2", Köln;Z')], [0, Buffer.from('C-1')], [3, Buffer.alloc(0)]] };
  const hits = hitRecords(doc, result);
  assert.deepEqual(hits, [
    { recordId: 'r1', matchKeys: ['document', 'names_dob'], caseRef: 'C-1' },
    { recordId: 'r1', matchKeys: ['names_year'], caseRef: 'C "2", Köln' },
    { recordId: 'r1', matchKeys: ['names_year'], caseRef: 'Z' },
    { recordId: 'r2', matchKeys: ['names_dob'], caseRef: '' },
  ]);
  assert.equal(hitsCsv(hits), 'record_id,match_keys,strength,case_ref\r\nr1,document;names_dob,document,C-1\r\n'
    + 'r1,names_year,names_year,"C ""2"", Köln"\r\nr1,names_year,names_year,Z\r\nr2,names_dob,names_dob,\r\n');
});

test('setup id vector', () => {
  const v = EC.setup;
  assert.equal(P.setupId(v.tag_length, v.tags_hex.map(H), v.labels_hex.map(H)), v.setup_id);
});

test('setup id over tags and labels', () => {
  const id = P.setupId(8, [Buffer.alloc(8, 1)], [Buffer.alloc(60, 2)]);
  const want = createHash('sha256').update(Buffer.concat([Buffer.from('matcher/v1/setup\x008\x00'), Buffer.alloc(8, 1),
    Buffer.alloc(60, 2)])).digest('hex').slice(0, 32);
  assert.equal(id, want);
});
