"""Property tests: any valid tree writes deterministically and reads back unchanged."""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assay.errors import InputError, VerificationError
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import read_layer, write_layer

EPOCH = 1_700_000_000

component = st.text(
    alphabet=st.characters(
        min_codepoint=0x21,
        max_codepoint=0x2FF,
        blacklist_characters="/\\",
        blacklist_categories=("Cs",),
    ),
    min_size=1,
    max_size=60,
).filter(lambda c: c not in (".", "..") and not c.startswith(".wh."))


@st.composite
def trees(draw: st.DrawFn) -> list[Entry]:
    paths = draw(st.lists(st.lists(component, min_size=1, max_size=5), min_size=1, max_size=25))
    entries: dict[str, Entry] = {}
    for parts in paths:
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in entries or entries[d].type is not EntryType.DIR:
                entries[d] = Entry(d, EntryType.DIR, 0o755)
        p = "/".join(parts)
        if p in entries:
            continue
        kind = draw(st.sampled_from(["file", "file", "symlink"]))
        if kind == "file":
            entries[p] = Entry(
                p,
                EntryType.FILE,
                draw(st.integers(0, 0o7777)),
                uid=draw(st.integers(0, 3_000_000)),
                gid=draw(st.integers(0, 70_000)),
                mtime=draw(st.integers(0, 2 * EPOCH)),
                data=draw(st.binary(max_size=700)),
            )
        else:
            entries[p] = Entry(p, EntryType.SYMLINK, 0o777, link=draw(component))
    # a path that became a directory's parent must be a directory
    for p in list(entries):
        parent = p.rpartition("/")[0]
        while parent:
            if entries.get(parent) is None or entries[parent].type is not EntryType.DIR:
                entries[parent] = Entry(parent, EntryType.DIR, 0o755)
            parent = parent.rpartition("/")[0]
    return list(entries.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(), st.randoms(use_true_random=False))
def test_write_read_round_trip_and_order_independence(entries: list[Entry], rnd: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        a = write_layer(entries, Path(tmp) / "a", source_date_epoch=EPOCH, workers=1)
        shuffled = entries[:]
        rnd.shuffle(shuffled)  # type: ignore[attr-defined]
        b = write_layer(shuffled, Path(tmp) / "b", source_date_epoch=EPOCH, workers=2)
        assert a.digest == b.digest
        with open(a.path, "rb") as fh:
            back = {e.path: e for e in read_layer(fh, diff_id=a.diff_id)}
        # Python's tarfile (an independent reader) sees the same names
        with tarfile.open(a.path) as tf:
            names = {m.name.rstrip("/") for m in tf.getmembers()}
    assert set(back) == {e.path for e in entries} == names
    for e in entries:
        g = back[e.path]
        assert (g.type, g.data, g.link, g.uid, g.gid) == (e.type, e.data, e.link, e.uid, e.gid)
        assert g.mode == (e.mode & 0o7777 or (0o777 if e.type is EntryType.SYMLINK else 0))
        assert g.mtime == min(e.mtime, EPOCH)


def _sample_blob(compression: str) -> bytes:
    entries = [
        Entry("d", EntryType.DIR, 0o755),
        Entry("d/f", EntryType.FILE, 0o644, data=b"hello" * 50),
        Entry("d/" + "long" * 40, EntryType.FILE, 0o600, data=b"x"),
        Entry("d/h", EntryType.HARDLINK, 0o644, link="d/f"),
        Entry("s", EntryType.SYMLINK, 0o777, link="d/f"),
        Entry("d/gone", EntryType.WHITEOUT, 0),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        blob = write_layer(entries, Path(tmp), source_date_epoch=EPOCH, compression=compression)  # type: ignore[arg-type]
        return blob.path.read_bytes()


PLAIN = _sample_blob("none")
GZ = _sample_blob("gzip")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([PLAIN, GZ]),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    st.integers(0, 10**6),
)
def test_mutated_layers_fail_only_with_input_errors(
    base: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(base)
    for pos, value in flips:
        data[pos % len(data)] = value
    data = data[: max(1, cut % (len(data) + 1))]
    try:
        for _ in read_layer(io.BytesIO(bytes(data))):
            pass
    except (InputError, VerificationError):
        pass
