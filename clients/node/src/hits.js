// The requester's hits file (docs/PROTOCOL.md §9): CSV, UTF-8, CRLF, mode 0600.
import { closeSync, fchmodSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

const quote = (f) => (/[",\r\n]/.test(f) ? `"${f.replace(/"/g, '""')}"` : f);

export function hitsCsv(hits) {
  const rows = [['record_id', 'match_keys', 'strength', 'case_ref']];
  for (const h of hits) rows.push([h.recordId, h.matchKeys.join(';'), h.matchKeys[0] ?? '', h.caseRef]);
  return rows.map((r) => `${r.map(quote).join(',')}\r\n`).join('');
}

/** Write `text` to `path` atomically, readable by the owner only whatever the umask. */
export function writePrivate(path, text) {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, text, null, 'utf8');
  } catch (err) {
    closeSync(fd);
    unlinkSync(tmp);
    throw err;
  } finally {
    try { closeSync(fd); } catch { /* already closed */ }
  }
  renameSync(tmp, path);
}
