#!/usr/bin/env node
// matcher-node: a requester client for matcher's ecdh protocol (docs/PROTOCOL.md).
//
//   matcher-node match --tokens tokens.json --peer HOST:PORT --ca ca.pem --cert me.pem --key me.key \
//                      [--server-name NAME] [--reveal requester|cardinality|both] [--out hits.csv]
//   matcher-node digest VECTORS.json       conformance digest of a normalisation vector file (§2.4)
//
// The tokens file comes from `matcher tokens` (§10). Prints a one-line JSON summary on stdout.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as P from '../src/protocol.js';
import { connect, hitRecords, matchEcdh, readTokensFile } from '../src/client.js';
import { hitsCsv, writePrivate } from '../src/hits.js';

async function main(argv) {
  const [command, ...rest] = argv;
  if (command === 'digest') {
    console.log(P.normConformanceDigest(JSON.parse(readFileSync(rest[0], 'utf8'))));
    return 0;
  }
  if (command !== 'match') {
    console.error('usage: matcher-node match --tokens FILE --peer HOST:PORT --ca PEM --cert PEM --key PEM '
      + '[--server-name NAME] [--reveal requester|cardinality|both] [--out hits.csv] [--insecure]\n'
      + '       matcher-node digest VECTORS.json');
    return 2;
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      tokens: { type: 'string' }, peer: { type: 'string' }, ca: { type: 'string' }, cert: { type: 'string' },
      key: { type: 'string' }, 'server-name': { type: 'string' }, reveal: { type: 'string', default: 'requester' },
      out: { type: 'string', default: 'hits.csv' }, insecure: { type: 'boolean', default: false },
      'chunk-elements': { type: 'string', default: '4096' },
    },
  });
  for (const need of ['tokens', 'peer']) {
    if (!values[need]) { console.error(`matcher-node match: --${need} is required`); return 2; }
  }
  if (!values.insecure && !(values.ca && values.cert && values.key)) {
    console.error('matcher-node match: mutual TLS needs --ca, --cert and --key (--insecure for development only)');
    return 2;
  }
  const doc = readTokensFile(values.tokens);
  const tls = values.insecure ? { insecure: true } : {
    ca: readFileSync(values.ca), cert: readFileSync(values.cert), key: readFileSync(values.key),
    serverName: values['server-name'],
  };
  const client = connect(values.peer, tls);
  const started = process.hrtime.bigint();
  try {
    const result = await matchEcdh(client, doc, {
      reveal: values.reveal, chunkElements: Number(values['chunk-elements']),
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const summary = {
      session_id: result.sessionId, key_epoch: result.keyEpoch, reveal: result.reveal, records: result.records,
      elements_sent: result.elementsSent, seconds: Math.round(seconds * 1000) / 1000,
    };
    if (values.reveal === 'cardinality') {
      summary.hit_count = result.hitCount;
    } else {
      const hits = hitRecords(doc, result);
      writePrivate(values.out, hitsCsv(hits));
      summary.hit_records = hits.length;
      summary.out = values.out;
    }
    console.log(JSON.stringify(summary));
    return 0;
  } finally {
    client.close();
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (err) => {
  console.error(`matcher-node: ${err.message}`);
  process.exitCode = 1;
});
