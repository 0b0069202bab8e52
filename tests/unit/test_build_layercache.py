"""The compressed-layer cache returns exactly the bytes ``write_layer`` writes, or recompresses."""

from __future__ import annotations

from pathlib import Path

from assay.build.layercache import cached_layer
from assay.oci.entry import Entry, EntryType
from assay.oci.layer import write_layer

ENTRIES = [
    Entry("etc", EntryType.DIR, 0o755),
    Entry("etc/hello", EntryType.FILE, 0o644, mtime=5, data=b"hello world\n" * 1000),
    Entry("usr", EntryType.DIR, 0o755),
    Entry("usr/bin", EntryType.DIR, 0o755),
    Entry("usr/bin/tool", EntryType.FILE, 0o755, data=bytes(range(256)) * 64),
]


def test_hit_gives_the_same_bytes_as_write_layer(tmp_path: Path) -> None:
    for compression in ("gzip", "zstd"):
        plain = write_layer(
            ENTRIES, tmp_path / "plain", source_date_epoch=100, compression=compression
        )  # type: ignore[arg-type]
        miss = cached_layer(
            ENTRIES,
            tmp_path / "a",
            tmp_path / "cache",
            source_date_epoch=100,
            compression=compression,
        )
        hit = cached_layer(
            ENTRIES,
            tmp_path / "b",
            tmp_path / "cache",
            source_date_epoch=100,
            compression=compression,
        )
        assert (miss.digest, miss.diff_id, miss.size) == (plain.digest, plain.diff_id, plain.size)
        assert (hit.digest, hit.diff_id, hit.size, hit.media_type) == (
            plain.digest,
            plain.diff_id,
            plain.size,
            plain.media_type,
        )
        assert hit.path.read_bytes() == plain.path.read_bytes()
        assert hit.path.name.startswith(".cached-"), "the second call must come from the cache"


def test_other_epoch_is_a_miss(tmp_path: Path) -> None:
    a = cached_layer(
        ENTRIES, tmp_path / "a", tmp_path / "cache", source_date_epoch=1, compression="gzip"
    )
    b = cached_layer(
        ENTRIES, tmp_path / "b", tmp_path / "cache", source_date_epoch=2, compression="gzip"
    )
    assert a.diff_id != b.diff_id and a.digest != b.digest


def test_damaged_cached_blob_is_not_used(tmp_path: Path) -> None:
    first = cached_layer(
        ENTRIES, tmp_path / "a", tmp_path / "cache", source_date_epoch=7, compression="gzip"
    )
    blob = tmp_path / "cache" / "layers" / "blobs" / first.digest.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[20] ^= 0xFF
    blob.write_bytes(bytes(data))
    again = cached_layer(
        ENTRIES, tmp_path / "b", tmp_path / "cache", source_date_epoch=7, compression="gzip"
    )
    assert again.digest == first.digest
    assert not again.path.name.startswith(".cached-")
    assert again.path.read_bytes() != bytes(data)
    healed = cached_layer(
        ENTRIES, tmp_path / "c", tmp_path / "cache", source_date_epoch=7, compression="gzip"
    )
    assert healed.path.name.startswith(".cached-") and healed.digest == first.digest
