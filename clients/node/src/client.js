// A requester session of protocol `ecdh` over gRPC with mutual TLS (docs/PROTOCOL.md §3–§6, §9).
import { randomInt } from 'node:crypto';
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
  if (policy.wire_version !== P.WIRE_VERSION) {
    throw new PreconditionError(`the responder speaks wire version ${policy.wire_version}, this client `
      + `${P.WIRE_VERSION}: both sides must speak the same wire version`);
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

/** Check elements added to a session in the requester and both modes (§6.6). */
export const CHECK_ELEMENTS = 8;

const randomIndex = (n) => randomInt(n);

/** Positions of the request: real tokens in order with CHECK_ELEMENTS check elements at secret random places. */
function layout(tokenCount, checks, a) {
  const total = tokenCount + checks;
  const positions = new Set();
  while (positions.size < checks) positions.add(randomIndex(total));
  const slots = []; // per position: {token: index} or {check: {base, key, inverse}}
  let next = 0;
  for (let pos = 0; pos < total; pos += 1) {
    if (positions.has(pos)) {
      const key = P.scalarMul(P.newKey(), a);
      slots.push({ check: { base: randomIndex(tokenCount), key, inverse: P.invertKey(key) } });
    } else {
      slots.push({ token: next });
      next += 1;
    }
  }
  return slots;
}

function shuffle(list) {
  for (let i = list.length - 1; i > 0; i -= 1) {
    const j = randomIndex(i + 1);
    [list[i], list[j]] = [list[j], list[i]];
  }
}

/**
 * Run one ecdh session (wire version 2) for the tokens file `doc` (§5, §6). Resolves to
 * {sessionId, keyEpoch, reveal, records, elementsSent, tokens, owners, hits: [[tokenIndex, caseRef]], hitCount}.
 */
export async function matchEcdh(client, doc, { reveal = 'requester', chunkElements = 4096, timeoutMs = 3600_000 } = {}) {
  await P.ready();
  const { tokens, owners } = distinctTokens(doc);
  const cardinality = reveal === 'cardinality';
  if (cardinality) shuffle(tokens); // the responder learns which positions matched: make that meaningless
  const policy = await getPolicy(client);
  const a = P.newKey();
  const aInv = P.invertKey(a);
  const slots = layout(tokens.length, cardinality || !tokens.length ? 0 : CHECK_ELEMENTS, a);
  checkPolicy(policy, doc, reveal, slots.length);
  const chunk = Math.max(1, Math.min(chunkElements, policy.max_chunk_elements || chunkElements));
  const call = client.Match({ deadline: Date.now() + timeoutMs });
  const hits = []; // [token index, case reference Buffer]
  const hitReport = []; // [position, P = b·H(x), Z = reply]
  const replies = new Set();
  const outputs = new Map(); // token index -> output hash (for the check elements' bases)
  const checkOutputs = new Map(); // position -> output hash of a check element
  let tail = null; // resolves to the messages after Finish, once their inputs are in
  let releaseTail;
  const tailReady = new Promise((resolve) => { releaseTail = resolve; });

  const write = async (msg) => {
    if (!call.write(msg)) await new Promise((resolve) => call.once('drain', resolve));
  };
  const sender = (async () => {
    await write({
      hello: {
        protocol: 'ecdh', key_spec_fingerprint: doc.key_spec_fingerprint, request_size: slots.length, reveal,
        wire_version: P.WIRE_VERSION, norm_conformance_digest: doc.norm_conformance_digest,
        norm_libraries: `node ${doc.norm_libraries}`,
      },
    });
    for (let off = 0; off < slots.length; off += chunk) {
      const elements = slots.slice(off, off + chunk).map((slot) => (slot.check
        ? P.blind(slot.check.key, tokens[slot.check.base]) : P.blind(a, tokens[slot.token])));
      await write({ blinded: { offset: off, elements } });
    }
    await write({ finish: { elements_sent: slots.length } });
    if (reveal !== 'requester') {
      tail = await tailReady;
      for (const msg of tail) await write(msg);
    }
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
        if (cardinality && accepted.tag_length !== P.POINT_BYTES) {
          throw new P.ProtocolError('in cardinality mode the setup is points of 32 bytes');
        }
        if (accepted.setup_size > MAX_SETUP_ENTRIES) throw new P.ProtocolError('the responder announced a too large setup');
        if (accepted.setup_skipped) throw new P.ProtocolError('the responder skipped a setup this client does not hold');
        index = new SetupIndex(accepted.tag_length, accepted.setup_size, !cardinality);
        if (cardinality && accepted.setup_size === 0) releaseTail([]);
      } else if (kind === 'setup') {
        if (done) throw new P.ProtocolError('setup after evaluated elements');
        index.add(msg.setup);
        if (cardinality && index.tags.length === accepted.setup_size) releaseTail(reblindedSetup(index.tags, a, chunk));
      } else if (kind === 'evaluated') {
        if (cardinality) throw new P.ProtocolError('the responder sent evaluated elements in cardinality mode (it counts itself)');
        const { offset, elements } = msg.evaluated;
        if (offset !== done || done + elements.length > slots.length) {
          throw new P.ProtocolError('evaluated elements out of order or too many');
        }
        elements.forEach((reply, j) => {
          const pos = done + j;
          const id = reply.toString('latin1');
          if (replies.has(id)) {
            throw new P.ResponderMisbehaved(`the responder's reply ${pos} repeats an earlier reply`);
          }
          replies.add(id);
          const slot = slots[pos];
          let z;
          try {
            z = P.multiply(slot.check ? slot.check.inverse : aInv, reply, pos);
          } catch (err) {
            throw new P.ResponderMisbehaved(`the responder's reply is not a valid point (${err.message})`);
          }
          const d = P.outputHash(z);
          if (slot.check) {
            checkOutputs.set(pos, d);
            return;
          }
          outputs.set(slot.token, d);
          const candidates = index.candidates(d.subarray(0, accepted.tag_length));
          if (!candidates.length) return;
          const token = tokens[slot.token];
          for (const label of candidates) {
            const ref = P.openLabel(d.subarray(32), label, token);
            if (ref !== null) {
              hits.push([slot.token, ref]);
              hitReport.push([pos, z, reply]);
              return;
            }
          }
          throw new P.ResponderMisbehaved(`the responder's reply ${pos} has a tag in the setup whose label `
            + 'does not open for this element: replies permuted, repeated, substituted or replayed');
        });
        done += elements.length;
        if (done === slots.length) {
          for (const [pos, d] of checkOutputs) {
            if (!d.equals(outputs.get(slots[pos].check.base))) {
              throw new P.ResponderMisbehaved('the responder\'s replies are not this session\'s evaluations of the '
                + 'elements sent (a check element does not agree): replies replaced or replayed');
            }
          }
          if (reveal === 'both') {
            const pairs = hitReport.map(([, z, reply]) => [z, reply]);
            releaseTail([{ hit_report: {
              elements: hitReport.map(([, z]) => z), indices: hitReport.map(([pos]) => pos),
              proof: P.proveHits(a, pairs, P.hitProofContext(accepted.session_id)),
            } }]);
          }
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
  if (cardinality) {
    if (summary.hit_count > Math.min(tokens.length, accepted.setup_size)) {
      throw new P.ResponderMisbehaved(`the responder counted ${summary.hit_count} hits for ${tokens.length} elements`);
    }
  } else if (done !== slots.length) {
    throw new P.ProtocolError(`session ended after ${done} of ${slots.length} elements`);
  }
  if (reveal === 'both' && summary.hit_count !== hitReport.length) {
    throw new P.ResponderMisbehaved(`the responder confirmed ${summary.hit_count} of the ${hitReport.length} reported hits`);
  }
  return {
    sessionId: accepted.session_id, keyEpoch: accepted.key_epoch, reveal,
    records: doc.records.length, elementsSent: slots.length, tokens, owners, hits,
    hitCount: cardinality ? summary.hit_count : null,
  };
}

/** Cardinality: every setup point Y re-blinded, a·Y, sorted (an order only a fixes), in chunks (§6.6). */
function reblindedSetup(points, a, chunk) {
  let reblinded;
  try {
    reblinded = points.map((y, i) => P.multiply(a, y, i));
  } catch (err) {
    throw new P.ResponderMisbehaved(`the responder's setup holds an invalid point (${err.message})`);
  }
  reblinded.sort(Buffer.compare);
  const out = [];
  for (let i = 0; i < reblinded.length; i += chunk) out.push({ reblinded: { offset: i, elements: reblinded.slice(i, i + chunk) } });
  return out;
}

/**
 * The hits (docs/hits-file.md, PROTOCOL §9): one per (own record, case reference) pair, with the keys that
 * linked that pair strongest first; ordered by record, then strength, then case reference as UTF-8 bytes.
 */
export function hitRecords(doc, result) {
  const order = new Map(doc.match_keys.map(([name], i) => [name, i]));
  const pairs = new Map(); // `${record index}\u0000${case ref}` -> {rec, ref, keys}
  for (const [tokenIndex, ref] of result.hits) {
    const parts = ref.toString('utf8').split(';').filter((r) => r);
    if (!parts.length) parts.push('');
    for (const [rec, keyName] of result.owners.get(result.tokens[tokenIndex].toString('latin1'))) {
      for (const part of parts) {
        const id = `${rec}\u0000${part}`;
        if (!pairs.has(id)) pairs.set(id, { rec, ref: part, keys: new Set() });
        pairs.get(id).keys.add(keyName);
      }
    }
  }
  const rows = [...pairs.values()].map((p) => ({
    rec: p.rec, ref: p.ref, keys: [...p.keys].sort((x, y) => order.get(x) - order.get(y)),
  }));
  rows.sort((x, y) => (x.rec - y.rec) || (order.get(x.keys[0]) - order.get(y.keys[0]))
    || Buffer.compare(Buffer.from(x.ref, 'utf8'), Buffer.from(y.ref, 'utf8')));
  return rows.map((r) => ({ recordId: doc.records[r.rec].record_id, matchKeys: r.keys, caseRef: r.ref }));
}

export function readTokensFile(path) {
  const doc = JSON.parse(readFileSync(path, 'utf8'));
  if (doc.format !== 'matcher-tokens/1') throw new PreconditionError(`${path} is not a matcher tokens file (format ${doc.format})`);
  return doc;
}
