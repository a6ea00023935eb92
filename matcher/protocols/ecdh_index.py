"""The requester's index over a received ecdh setup: tag lookup and label opening.

Hazmat, like :mod:`matcher.protocols.ecdh`, whose derivations (output hash, label key,
associated data) it applies.
"""

from __future__ import annotations

import bisect
import functools
import operator
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from matcher.errors import InvalidElement, ResponderMisbehaved
from matcher.protocols import group_backend as _backend
from matcher.protocols import label_backend as _labels
from matcher.protocols.ecdh import LABEL_AD_PREFIX, ResponderSetup, _derive, _open_with, label_ad


@dataclass(frozen=True, repr=False)
class ReceivedRows:
    """A received setup as its rows ``tag ‖ label`` in order, in the per-chunk buffers they arrived in.

    What the requester's setup cache hashes (the setup id) and writes, piece by piece:
    ``b"".join(parts)`` is the setup's rows, but is never made.
    """

    tag_length: int
    label_length: int
    count: int
    parts: tuple[bytes, ...]

    def __repr__(self) -> str:  # the tags map to the watchlist's tokens
        return f"ReceivedRows(<{self.count} entries, tags of {self.tag_length} bytes>)"

    def __len__(self) -> int:
        return self.count


#: rows per struct unpack in :func:`_tags_of_rows`
_ROWS_PER_UNPACK = 4096


@functools.lru_cache(maxsize=8)
def _rows_struct(tag_length: int, width: int, rows: int) -> struct.Struct:
    """A struct that unpacks ``rows`` rows of ``width`` bytes into their first ``tag_length`` bytes each."""
    return struct.Struct(f"{tag_length}s{width - tag_length}x" * rows)


def _tags_of_rows(rows: bytes, tag_length: int, width: int) -> bytes:
    """The tags of the rows ``tag ‖ label`` (each ``width`` bytes), concatenated.

    Equal to ``b"".join(rows[i : i + tag_length] for i in range(0, len(rows), width))``, with
    the rows unpacked 4,096 at a time by one struct (a 1M-entry setup: 0.05 s instead of
    0.29 s of a Python loop over slices).
    """
    count = len(rows) // width
    full, rest = divmod(count, _ROWS_PER_UNPACK)
    block = _rows_struct(tag_length, width, _ROWS_PER_UNPACK) if full else None
    parts = [b"".join(block.unpack_from(rows, b * _ROWS_PER_UNPACK * width)) for b in range(full)] if block else []
    if rest:
        parts.append(b"".join(_rows_struct(tag_length, width, rest).unpack_from(rows, full * _ROWS_PER_UNPACK * width)))
    return b"".join(parts)


class SetupIndex:
    """Requester-side lookup over a received setup, kept as the responder sent it: sorted by tag.

    The responder sorts its setup by tag, so a lookup is a binary search: no per-entry
    dict, and a cached setup of millions of entries is usable as soon as it is read.
    Entries out of order are refused.

    Held as buffers, not one Python object per entry: each received chunk's tags joined,
    and its rows ``tag ‖ label`` joined (both made while the chunk's objects are fresh in
    the CPU cache); a hit's labels are sliced from its chunk's rows. A 1M-entry setup is
    then about 90 MB in a few hundred objects instead of two million, and the setup cache
    hashes and writes the row buffers as they are (:meth:`received_rows`); a cached setup
    is adopted as its rows (:meth:`from_rows`). A chunk whose labels are not of one length
    (never on the wire: the session refuses it) keeps its labels as a list.
    """

    def __init__(self, tag_length: int) -> None:
        self.tag_length = tag_length
        self._count = 0
        self._last_tag = b""
        #: each chunk's tags concatenated, as it arrives (one join over a million tags scattered in
        #: memory took 0.25 s); joined into one at the first lookup, for the C lookup and bisect
        self._tag_parts: list[bytes] = []
        #: the tags concatenated and their prefix table, for the C lookup (made on first use)
        self._joined: tuple[bytes, bytes] | None = None
        #: without the C lookup: the tags as a list, for bisect (made on first use)
        self._tag_list: list[bytes] | None = None
        #: per chunk: its first entry, its rows ``tag ‖ label`` joined and their width (tag length
        #: plus its one label length), or None and its labels as a list
        self._starts: list[int] = []
        self._rows: list[bytes | None] = []
        self._widths: list[int] = []
        self._label_lists: list[Sequence[bytes] | None] = []
        self._label_bytes = 0  # 0: no entry has a label (cardinality mode), every hit is b""

    @classmethod
    def from_setup(cls, setup: ResponderSetup) -> SetupIndex:
        """An index over a whole setup given as lists, checked as one received chunk is."""
        index = cls(setup.tag_length)
        index.add(setup.tags, setup.labels)
        return index

    @classmethod
    def from_rows(cls, rows: ReceivedRows) -> SetupIndex:
        """An index over a setup held as its rows ``tag ‖ label``, e.g. the requester's cached copy read whole.

        No object per entry: each buffer of rows is adopted as it is (a hit's label is
        sliced from it) and its tags are copied out into one joined buffer. The rows were
        checked when they were received, and their content is vouched for by the setup id
        it hashes to, so they are not checked again.
        """
        index = cls(rows.tag_length)
        n, width = rows.tag_length, rows.tag_length + rows.label_length
        for part in rows.parts:
            count = len(part) // width
            if not count:
                continue
            joined = part if width == n else _tags_of_rows(part, n, width)
            index._append_chunk(count, part, width, None)
            index._tag_parts.append(joined)
            index._count += count
            index._last_tag = joined[-n:]
        index._label_bytes = index._count * rows.label_length
        return index

    def add(self, tags: Sequence[bytes], labels: Sequence[bytes]) -> None:
        """Append one received chunk of the setup (labels empty in cardinality mode)."""
        if labels and len(labels) != len(tags):
            raise InvalidElement("setup chunk with tags and labels of different counts")
        previous = self._last_tag
        # Both checks in C-level loops first (a 1M-entry setup: 0.05 s instead of 0.3 s of a
        # Python loop on the session's main thread); the loop below only names the first bad entry.
        if set(map(len, tags)) - {self.tag_length} or not all(map(operator.le, (previous, *tags), tags)):
            for i, tag in enumerate(tags):
                if len(tag) != self.tag_length:
                    raise InvalidElement(
                        f"setup tag {self._count + i} has {len(tag)} bytes, expected {self.tag_length}")
                if tag < previous:
                    raise InvalidElement(f"setup entry {self._count + i} is out of tag order")
                previous = tag
        if not tags:
            return
        joined_tags = b"".join(tags)
        label_lengths = set(map(len, labels))
        if not labels or label_lengths == {0}:  # no labels: the rows are the tags
            self._append_chunk(len(tags), joined_tags, self.tag_length, None)
        elif len(label_lengths) == 1:
            pieces: list[bytes] = [b""] * (2 * len(tags))
            pieces[0::2] = tags
            pieces[1::2] = labels
            width = self.tag_length + label_lengths.pop()
            self._append_chunk(len(tags), b"".join(pieces), width, None)
            self._label_bytes += len(tags) * (width - self.tag_length)
        else:
            self._append_chunk(len(tags), None, 0, list(labels))
            self._label_bytes += sum(label_lengths)
        self._tag_parts.append(joined_tags)
        self._joined = self._tag_list = None
        self._count += len(tags)
        self._last_tag = tags[-1]

    def _append_chunk(self, count: int, rows: bytes | None, width: int, labels: Sequence[bytes] | None) -> None:
        self._starts.append(self._count)
        self._rows.append(rows)
        self._widths.append(width)
        self._label_lists.append(labels)

    def received_rows(self) -> ReceivedRows:
        """The rows received so far, as the per-chunk buffers (no copy): what the setup cache writes.

        ValueError when they are not of one fixed width (chunks with labels of different
        lengths, or with labels and without: the session refuses such a setup earlier).
        """
        widths = set(self._widths)
        if None in self._rows or len(widths) > 1:
            raise ValueError("setup rows are not of one fixed length")
        width = widths.pop() if widths else self.tag_length
        parts = tuple(rows for rows in self._rows if rows is not None)
        return ReceivedRows(self.tag_length, width - self.tag_length, self._count, parts)

    @property
    def tags(self) -> list[bytes]:
        """The tags in order, as a new list (one object per entry: for the cardinality tail, and tests)."""
        joined, n = self._joined_tags(), self.tag_length
        return [joined[i : i + n] for i in range(0, len(joined), n)]

    @property
    def labels(self) -> list[bytes]:
        """The labels in order (b"" where none), as a new list (one object per entry: for tests)."""
        return self._labels_of(0, self._count)

    def _label(self, i: int) -> bytes:
        """Entry i's label (b"" where it has none), sliced from its chunk's rows."""
        c = bisect.bisect_right(self._starts, i) - 1
        labels = self._label_lists[c]
        if labels is not None:
            return labels[i - self._starts[c]]
        width, n = self._widths[c], self.tag_length
        at = (i - self._starts[c]) * width + n
        return self._rows[c][at : at + width - n]  # type: ignore[index]  # (rows is set where labels is None)

    def _labels_of(self, first: int, count: int) -> list[bytes]:
        """The labels of entries first .. first + count - 1."""
        return [self._label(i) for i in range(first, first + count)]

    def _joined_tags(self) -> bytes:
        """Every tag concatenated, in order (the chunks' joined tags made one at the first call)."""
        if len(self._tag_parts) > 1:
            self._tag_parts = [b"".join(self._tag_parts)]
        return self._tag_parts[0] if self._tag_parts else b""

    def __len__(self) -> int:
        return self._count

    def lookup(self, unblinded: Sequence[bytes], tokens: Sequence[bytes], offset: int = 0) -> list[bytes | None]:
        """For each b·H(x) of token x: its case reference(s) if x is in the responder's set, else None."""
        return self.lookup_outputs([_derive(p) for p in unblinded], tokens, offset)

    def lookup_outputs(
        self, outputs: Sequence[bytes], tokens: Sequence[bytes] | None, offset: int = 0
    ) -> list[bytes | None]:
        """Like :meth:`lookup`, from the output hashes of :func:`unblind_outputs`.

        ``tokens[j]`` is the requester's own token behind ``outputs[j]`` (element
        ``offset + j`` of the session). With labels, a hit is a setup entry with the
        element's tag whose label opens under the element's label key and its token's
        associated data; every entry with that tag is tried (an honest tag collision,
        chance under 2^-40 a session, leaves another entry to try). A tag found whose
        labels all fail to open is a reply the responder did not compute as b·X_i for
        this element (permuted, repeated, substituted, replayed): ResponderMisbehaved.
        Without labels (cardinality mode) ``tokens`` may be None and a tag match is a
        hit with the value ``b""``.
        """
        out: list[bytes | None] = [None] * len(outputs)
        for j, found in self.hits(outputs, tokens, offset):
            out[j] = found
        return out

    def hits(
        self, outputs: Sequence[bytes], tokens: Sequence[bytes] | None, offset: int = 0, first_token: int = 0
    ) -> list[tuple[int, bytes]]:
        """(j, case reference(s)) of each hit among ``outputs``, in order: :meth:`lookup_outputs` without the misses.

        ``tokens[first_token + j]`` is the token behind ``outputs[j]`` (so a caller passes
        its whole token list, not a slice of it). The same checks and errors as
        :meth:`lookup_outputs`. A reply chunk of a session has about one hit in ten
        elements: the work here is per hit, in C-level passes over the hits (one call
        opens every hit's first label; a tag's other entries are tried in Python only where
        that label does not open). The entry-by-entry walk of :meth:`_hits_walked` runs
        where the C opener cannot take the batch (not built, labels of another length or
        type, labels on some entries only).
        """
        found = self._found(outputs)
        if not found:
            return []
        js = [j for j, _, _ in found]
        if not self._label_bytes:  # no labels (cardinality mode): a tag match is a hit
            return [(j, b"") for j in js]
        label = self._label
        firsts = [label(i) for _, i, _ in found]
        if not any(firsts):  # no labels on these entries
            return [(j, b"") for j in js]
        if _labels.OPEN is None or tokens is None or not all(firsts):
            return self._hits_walked(outputs, tokens, offset, first_token, found, firsts)
        hit_outputs = [outputs[j] for j in js]
        hit_tokens = [tokens[first_token + j] for j in js]
        if (set(map(type, hit_outputs)) | set(map(type, firsts)) | set(map(type, hit_tokens)) != {bytes}
                or set(map(len, hit_outputs)) != {64} or not all(n in _C_LABELS for n in set(map(len, firsts)))):
            return self._hits_walked(outputs, tokens, offset, first_token, found, firsts)
        opened: list[bytes | None] = _labels.OPEN.open_labels(hit_outputs, firsts, hit_tokens, LABEL_AD_PREFIX)
        if None in opened:  # an honest tag collision, or a reply the responder did not compute
            for k, ref in enumerate(opened):
                if ref is None:
                    j, first, count = found[k]
                    opened[k] = _next_entries(self._labels_of(first, count), outputs[j], hit_tokens[k], offset + j)
        return list(zip(js, opened, strict=True))  # type: ignore[arg-type]  # (no None left)

    def _hits_walked(
        self, outputs: Sequence[bytes], tokens: Sequence[bytes] | None, offset: int, first_token: int,
        found: list[tuple[int, int, int]], firsts: list[bytes],
    ) -> list[tuple[int, bytes]]:
        """:meth:`hits` entry by entry: each tag's entries in order, the first label that opens.

        ``firsts``: the label of each found tag's first entry (read already by :meth:`hits`).
        """
        out: list[tuple[int, bytes]] = []
        pending: list[tuple[int, list[bytes]]] = []  # (j, the labels of j's tag), to be opened
        for (j, first, count), label in zip(found, firsts, strict=True):
            candidates = [label] if count == 1 else self._labels_of(first, count)
            if candidates and not candidates[0]:
                out.append((j, b""))
            elif candidates:
                if tokens is None:
                    raise ValueError("labels can only be opened with the elements' tokens")
                pending.append((j, candidates))
        if not pending:
            return out
        own = tokens[first_token : first_token + len(outputs)] if tokens is not None else []
        for (j, candidates), found_ref in zip(pending, _open_first(outputs, own, pending), strict=True):
            if found_ref is None:
                found_ref = _next_entries(candidates, outputs[j], own[j], offset + j)
            out.append((j, found_ref))
        out.sort(key=operator.itemgetter(0))  # unlabelled entries first above: back to the outputs' order
        return out

    def _found(self, outputs: Sequence[bytes]) -> list[tuple[int, int, int]]:
        """(j, i, count) for each output j whose tag is in the setup: the ``count`` entries from i have it.

        One C call over the tags concatenated when the IFMA extension is loaded (a
        table of the first tag of each 16-bit prefix, then a binary search in that
        prefix's few tags: about 0.1 µs an element, for n·L + 256 KB more bytes held);
        the same search with :mod:`bisect` otherwise, over the tags split into a list once
        (the portable path only: bisect through a sequence view of the joined tags took twice
        as long, 4.8 against 2.4 µs an element over 1M tags). ``count`` is almost always 1 (two
        entries share a tag only by an honest collision); counting in C spares the
        Python loop over the tags list (4 µs a hit, most of it cache misses on its items).
        """
        n = self.tag_length
        joined = self._joined_tags()
        if _backend.FAST is not None and isinstance(outputs, list) and n >= 2:  # (tags are >= 8 bytes on the wire)
            if self._joined is None:
                self._joined = joined, _backend.FAST.tag_buckets(joined, n)
            found: list[tuple[int, int, int]] = _backend.FAST.find_tags(*self._joined, n, outputs)
            return found
        out = []
        if self._tag_list is None:
            self._tag_list = [joined[i : i + n] for i in range(0, len(joined), n)]
        tags = self._tag_list
        size = len(tags)
        for j, d in enumerate(outputs):
            tag = d[:n]
            i = bisect.bisect_left(tags, tag)
            if i < size and tags[i] == tag:
                out.append((j, i, bisect.bisect_right(tags, tag, i) - i))
        return out


def _next_entries(candidates: Sequence[bytes], output: bytes, token: bytes, element: int) -> bytes:
    """The first of ``candidates[1:]`` (the other entries with the tag) that opens, in Python (an honest
    collision); ResponderMisbehaved naming ``element`` when none does. The first was tried already."""
    ad = label_ad(token)
    for label in candidates[1:]:
        found = _open_with(output[32:], label, ad)
        if found is not None:
            return found
    raise ResponderMisbehaved(
        f"the responder's reply {element} matches a setup entry whose label was not "
        "sealed for this element: the reply was permuted, repeated, substituted or taken "
        "from another session (an honest collision has a chance under 2^-40)"
    )


#: the label lengths the C opener takes (nonce ‖ tag at least, a 1 MiB plaintext at most)
_C_LABELS = range(28, (1 << 20) + 28 + 1)


def _open_first(
    outputs: Sequence[bytes], tokens: Sequence[bytes], pending: Sequence[tuple[int, list[bytes]]]
) -> list[bytes | None]:
    """For each (j, labels) of ``pending``: the first label opened with output j's label key and
    token j's associated data, or None where it does not open (as :func:`_open_with`).

    One C call for the batch (OpenSSL, without the GIL: about 1 µs a label instead of
    10-13 µs with ``cryptography``) when :data:`label_backend.OPEN` passed its known-answer
    test and the outputs are bytes; a label of a length the C opener does not take, and every
    label without it, is opened in Python.
    """
    if _labels.OPEN is None or not pending:
        return [_open_with(outputs[j][32:], labels[0], label_ad(tokens[j])) for j, labels in pending]
    batch = [i for i, (j, labels) in enumerate(pending)
             if len(labels[0]) in _C_LABELS and type(outputs[j]) is bytes and len(outputs[j]) == 64
             and type(labels[0]) is bytes and type(tokens[j]) is bytes]
    opened: list[bytes | None] = _labels.OPEN.open_labels(
        [outputs[pending[i][0]] for i in batch], [pending[i][1][0] for i in batch],
        [tokens[pending[i][0]] for i in batch], LABEL_AD_PREFIX)
    if len(batch) == len(pending):
        return opened
    result: list[bytes | None] = [None] * len(pending)
    for i, found in zip(batch, opened, strict=True):
        result[i] = found
    done = set(batch)
    for i, (j, labels) in enumerate(pending):
        if i not in done:
            result[i] = _open_with(outputs[j][32:], labels[0], label_ad(tokens[j]))
    return result
