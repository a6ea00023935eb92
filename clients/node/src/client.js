// A requester session of protocol `ecdh` over gRPC with mutual TLS (docs/PROTOCOL.md §3–§6, §9).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import * as P from './protocol.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const PROTO_PATH = join(HERE, '..', '..', '..', 'proto', 'matcher', 'v1', 'matcher.proto');
/** Most setup entries this client accepts to hold. */
export const MAX_SETUP_ENTRIES = 100_000_000;
const MAX_MESSAGE = 65536 * 40 + 4096;

export class MatchRefused extends Error {
  constructor(code, details) {
    super(`${grpc.status[code] ?? code}: ${details}`);
    this.code = code;
    this.details = details;
  }
}

/** Check a responder's policy against a tokens file before any data moves (§4, §10). */
export class PreconditionError extends Error {}

function loadService() {
  const def = protoLoader.loadSync(PROTO_PATH, {
    keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
  });
  return grpc.loadPackageDefinition(def).matcher.v1.Responder;
}

export function connect(target, { ca, key, cert, serverName, insecure = false }) {
  const Responder = loadService();
  const options = {
    'grpc.max_receive_message_length': MAX_MESSAGE,
    'grpc.max_send_message_length': MAX_MESSAGE,
  };
  if (serverName) {
    options['grpc.ssl_target_name_override'] = serverName;
    options['grpc.default_authority'] = serverName;
  }
  const creds = insecure ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(ca, key, cert);
  return new Responder(target, creds, options);
}

export function getPolicy(client, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    client.GetPolicy({}, { deadline: Date.now() + timeoutMs }, (err, policy) => {
      if (err) reject(new MatchRefused(err.code, err.details));
      else resolve(policy);
    });
  });
}

/** The distinct tokens of a tokens file in order of first appearance, and who owns each (§10). */
export function distinctTokens(doc) {
  const owners = new Map(); // token (latin1 string of its bytes) -> [[record index, key name], ...]
  const tokens = [];
  doc.records.forEach((rec, i) => {
    for (const [keyName, text] of rec.tokens) {
      const bytes = Buffer.from(text, 'utf8');
      const id = bytes.toString('latin1');
      let list = owners.get(id);
      if (!list) {
        list = [];
        owners.set(id, list);
        tokens.push(bytes);
      }
      list.push([i, keyName]);
    }
  });
  return { tokens, owners };
}

/** Refuse before any data moves when fingerprints, digests, protocol, reveal or size disagree (§4). */
export function checkPolicy(policy, doc, reveal, requestSize) {
  if (policy.key_spec_fingerprint !== doc.key_spec_fingerprint) {
    const keys = policy.match_keys.map((k) => `${k.name}=[${k.fields.join(', ')}]`).join(', ');
    throw new PreconditionError(
      `match-key spec differs: tokens file fingerprint ${doc.key_spec_fingerprint}, responder fingerprint `
      + `${policy.key_spec_fingerprint}; the responder's keys are ${keys} under normalisation ${policy.norm_version}`);
  }
  if (policy.norm_conformance_digest !== doc.norm_conformance_digest) {
    throw new PreconditionError(
      `normalisation ${doc.norm_version} tokenises differently: tokens file conformance digest `
      + `${doc.norm_conformance_digest} (${doc.norm_libraries}), responder conformance digest `
      + `${policy.norm_conformance_digest || '(none)'} (${policy.norm_libraries}); make the tokens with a matcher `
      + 'installation whose conformance vectors and token libraries equal the responder\'s');
  }
  if (!policy.protocols.includes('ecdh')) {
    throw new PreconditionError(`protocol 'ecdh' is not offered by this responder (it offers ${policy.protocols.join(', ')})`);
  }
  if (policy.reveal !== reveal) {
    throw new PreconditionError(`reveal mode '${reveal}' requested, this responder runs '${policy.reveal}'`);
  }
  if (requestSize === 0) throw new PreconditionError('the tokens file has no tokens');
  if (policy.max_request_size && requestSize > policy.max_request_size) {
    throw new PreconditionError(`this request has ${requestSize} elements; the responder accepts at most `
      + `${policy.max_request_size} per session: split the records into smaller files`);
  }
}

/** Sorted setup, looked up by binary search over its tags (§6.4, §6.5). */
class SetupIndex {
  constructor(tagLength, expected, withLabels) {
    this.tagLength = tagLength;
    this.expected = expected;
    this.withLabels = withLabels;
    this.tags = [];
    this.labels = [];
    this.labelLength = 0;
  }

  add(chunk) {
    const { tags, labels } = chunk;
    if (this.withLabels) {
      if (labels.length !== tags.length) throw new P.ProtocolError('setup chunk with tags and labels of different counts');
      for (const l of labels) {
        if (!this.labelLength) this.labelLength = l.length;
        if (l.length !== this.labelLength || l.length < P.MIN_LABEL_BYTES) {
          throw new P.ProtocolError('setup labels are not of one common, possible length');
        }
      }
    } else if (labels.length) {
      throw new P.ProtocolError('setup chunk with labels in cardinality mode');
    }
    let previous = this.tags.length ? this.tags[this.tags.length - 1] : null;
    for (const t of tags) {
      if (t.length !== this.tagLength) throw new P.ProtocolError(`setup tag of ${t.length} bytes, expected ${this.tagLength}`);
      if (previous && Buffer.compare(t, previous) < 0) throw new P.ProtocolError('setup entries out of tag order');
      previous = t;
    }
    this.tags.push(...tags);
    if (this.withLabels) this.labels.push(...labels);
    if (this.tags.length > this.expected) throw new P.ProtocolError('more setup entries than announced');
  }

  /** Labels of every entry whose tag equals `tag` (empty array: no entry). */
  candidates(tag) {
    let lo = 0;
    let hi = this.tags.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Buffer.compare(this.tags[mid], tag) < 0) lo = mid + 1;
      else hi = mid;
    }
    const out = [];
    for (let i = lo; i < this.tags.length && this.tags[i].equals(tag); i += 1) {
      out.push(this.withLabels ? this.labels[i] : Buffer.alloc(0));
    }
    return out;
  }
}

/**
 * Run one ecdh session for the tokens file `doc` (§5, §6). Resolves to
 * {sessionId, keyEpoch, reveal, records, elementsSent, hitTokens: [[tokenIndex, caseRef]], hitCount}.
 */
export async function matchEcdh(client, doc, { reveal = 'requester', chunkElements = 4096, timeoutMs = 3600_000 } = {}) {
  await P.ready();
  const { tokens, owners } = distinctTokens(doc);
  const policy = await getPolicy(client);
  checkPolicy(policy, doc, reveal, tokens.length);
  const chunk = Math.max(1, Math.min(chunkElements, policy.max_chunk_elements || chunkElements));
  const a = P.newKey();
  const aInv = P.invertKey(a);
  const call = client.Match({ deadline: Date.now() + timeoutMs });
  const hits = []; // [token index, case reference Buffer]
  const hitPoints = [];
  let cardinalityHits = 0;

  const sender = (async () => {
    call.write({
      hello: {
        protocol: 'ecdh', key_spec_fingerprint: doc.key_spec_fingerprint, request_size: tokens.length, reveal,
        norm_conformance_digest: doc.norm_conformance_digest, norm_libraries: `node ${doc.norm_libraries}`,
      },
    });
    for (let off = 0; off < tokens.length; off += chunk) {
      const elements = tokens.slice(off, off + chunk).map((t) => P.blind(a, t));
      if (!call.write({ blinded: { offset: off, elements } })) {
        await new Promise((resolve) => call.once('drain', resolve));
      }
    }
    call.write({ finish: { elements_sent: tokens.length } });
  })();
  sender.catch(() => {});

  let accepted = null;
  let index = null;
  let done = 0;
  let summary = null;
  try {
    for await (const msg of call) {
      const kind = msg.kind;
      if (!accepted) {
        if (kind !== 'accepted') throw new P.ProtocolError('the responder did not accept the session with an Accepted message');
        accepted = msg.accepted;
        if (accepted.tag_length < P.MIN_TAG_BYTES || accepted.tag_length > P.MAX_TAG_BYTES) {
          throw new P.ProtocolError(`the responder announced tags of ${accepted.tag_length} bytes`);
        }
        if (accepted.setup_size > MAX_SETUP_ENTRIES) throw new P.ProtocolError('the responder announced a too large setup');
        if (accepted.setup_skipped) throw new P.ProtocolError('the responder skipped a setup this client does not hold');
        index = new SetupIndex(accepted.tag_length, accepted.setup_size, reveal !== 'cardinality');
      } else if (kind === 'setup') {
        if (done) throw new P.ProtocolError('setup after evaluated elements');
        index.add(msg.setup);
      } else if (kind === 'evaluated') {
        const { offset, elements } = msg.evaluated;
        if (offset !== done || done + elements.length > tokens.length) {
          throw new P.ProtocolError('evaluated elements out of order or too many');
        }
        elements.forEach((p, j) => {
          const z = P.multiply(aInv, p, done + j);
          const d = P.outputHash(z);
          const candidates = index.candidates(d.subarray(0, accepted.tag_length));
          if (!candidates.length) return;
          if (reveal === 'cardinality') {
            cardinalityHits += 1;
            return;
          }
          for (const label of candidates) {
            const ref = P.openLabel(d.subarray(32), label);
            if (ref !== null) {
              hits.push([done + j, ref]);
              hitPoints.push(z);
              break;
            }
          }
        });
        done += elements.length;
        if (done === tokens.length && reveal === 'both') {
          await sender;
          call.write({ hit_report: { elements: hitPoints } });
        }
      } else if (kind === 'summary') {
        summary = msg.summary;
        break;
      } else {
        throw new P.ProtocolError(`unexpected ${kind || 'empty'} message from the responder`);
      }
    }
  } catch (err) {
    call.cancel();
    if (err.code !== undefined && err.details !== undefined) throw new MatchRefused(err.code, err.details);
    throw err;
  }
  call.end();
  if (!summary) throw new P.ProtocolError('the responder closed the session before its summary');
  if (index && index.tags.length !== accepted.setup_size) throw new P.ProtocolError('fewer setup entries than announced');
  if (done !== tokens.length) throw new P.ProtocolError(`session ended after ${done} of ${tokens.length} elements`);
  if (reveal === 'both' && summary.hit_count !== hitPoints.length) {
    throw new P.ProtocolError(`the responder confirmed ${summary.hit_count} of the ${hitPoints.length} reported hits`);
  }
  return {
    sessionId: accepted.session_id, keyEpoch: accepted.key_epoch, reveal,
    records: doc.records.length, elementsSent: tokens.length, tokens, owners, hits,
    hitCount: reveal === 'cardinality' ? cardinalityHits : null,
  };
}

/** Hit records from hit tokens (§9): keys in key-spec order, case references split, unique, sorted. */
export function hitRecords(doc, result) {
  const order = new Map(doc.match_keys.map(([name], i) => [name, i]));
  const keys = new Map();
  const refs = new Map();
  for (const [tokenIndex, ref] of result.hits) {
    const parts = ref.toString('utf8').split(';').filter((r) => r);
    for (const [rec, keyName] of result.owners.get(result.tokens[tokenIndex].toString('latin1'))) {
      if (!keys.has(rec)) { keys.set(rec, new Set()); refs.set(rec, new Set()); }
      keys.get(rec).add(keyName);
      for (const r of parts) refs.get(rec).add(r);
    }
  }
  const byteOrder = (x, y) => Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
  return [...keys.keys()].sort((x, y) => x - y).map((rec) => ({
    recordId: doc.records[rec].record_id,
    matchKeys: [...keys.get(rec)].sort((x, y) => order.get(x) - order.get(y)),
    caseRef: [...refs.get(rec)].sort(byteOrder).join(';'),
  }));
}

export function readTokensFile(path) {
  const doc = JSON.parse(readFileSync(path, 'utf8'));
  if (doc.format !== 'matcher-tokens/1') throw new PreconditionError(`${path} is not a matcher tokens file (format ${doc.format})`);
  return doc;
}
