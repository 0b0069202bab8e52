"""A cache of compressed layers, keyed by the uncompressed tar's digest (the diff_id).

Compressing is most of a warm build's time, and the same entries always make the same tar, so
the blob compressed last time is reused: the tar is serialised once to learn its diff_id (cheap:
no compression), and a cached blob for that diff_id, compression and level is taken after its
own digest has been checked again. A miss compresses as usual and stores the result. The output
is byte-for-byte what ``write_layer`` would write (that is what the key promises), so
reproducibility does not depend on the cache.

Layout: ``<cache>/layers/<compression>-<level>-<library version>/<diff hex>.json`` holds
``{"digest", "size"}``; the
blob at ``<cache>/layers/blobs/<digest hex>``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from assay._atomic import atomic_write_bytes
from assay._json import load_json
from assay.oci import mediatypes as mt
from assay.oci.digest import DigestingWriter, digest_file, digest_hex, parse_digest
from assay.oci.entry import Entry
from assay.oci.layer import (
    DEFAULT_GZIP_LEVEL,
    DEFAULT_ZSTD_LEVEL,
    LayerBlob,
    write_layer,
    write_tar,
)

__all__ = ["cached_layer"]

log = logging.getLogger(__name__)


def _codec_version(compression: str) -> str:
    """The compressor library's version: a new zlib/zstd may write other bytes for the same
    input, and a cached blob must be exactly what this machine would write now."""
    if compression == "gzip":
        import zlib

        return f"zlib{zlib.ZLIB_RUNTIME_VERSION}"
    import zstandard

    return (
        f"zstd{zstandard.ZSTD_VERSION[0]}.{zstandard.ZSTD_VERSION[1]}.{zstandard.ZSTD_VERSION[2]}"
    )


def cached_layer(
    entries: Sequence[Entry],
    dest_dir: Path,
    cache: Path,
    *,
    source_date_epoch: int,
    compression: str,
) -> LayerBlob:
    """``write_layer``, reusing a blob compressed earlier from identical tar bytes."""
    level = DEFAULT_GZIP_LEVEL if compression == "gzip" else DEFAULT_ZSTD_LEVEL
    media_type = mt.OCI_LAYER_GZIP if compression == "gzip" else mt.OCI_LAYER_ZSTD
    sink = DigestingWriter(None)
    count = write_tar(entries, sink, source_date_epoch=source_date_epoch)
    diff_hex = digest_hex(sink.digest)
    index = (
        cache
        / "layers"
        / f"{compression}-{level}-{_codec_version(compression)}"
        / (f"{diff_hex}.json")
    )
    blobs = cache / "layers" / "blobs"
    try:
        meta = load_json(index.read_bytes(), what=f"layer cache entry {index}", max_size=1 << 16)
        digest = parse_digest(str(meta["digest"]))
        size = int(meta["size"])
        blob = blobs / digest.split(":", 1)[1]
        found, found_size = digest_file(blob)
        if found == digest and found_size == size:
            dest_dir.mkdir(parents=True, exist_ok=True)
            out = dest_dir / f".cached-{digest.split(':', 1)[1]}"
            try:
                os.link(blob, out)
            except OSError:
                shutil.copyfile(blob, out)
            return LayerBlob(
                path=out,
                digest=digest,
                size=size,
                diff_id=sink.digest,
                media_type=media_type,
                uncompressed_size=sink.size,
                entries=count,
            )
        log.warning("cached layer %s is damaged; compressing again", blob)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a miss (or an unreadable entry): compress as usual
    layer = write_layer(
        entries,
        dest_dir,
        source_date_epoch=source_date_epoch,
        compression=compression,  # type: ignore[arg-type]
    )
    if layer.diff_id != sink.digest or layer.media_type != media_type:
        log.warning("layer writer and tar serialiser disagree; not caching %s", layer.digest)
        return layer
    try:
        blobs.mkdir(parents=True, exist_ok=True)
        target = blobs / layer.digest.split(":", 1)[1]
        tmp = blobs / f".tmp-{target.name}.{os.getpid()}"  # replaces a damaged copy, if any
        shutil.copyfile(layer.path, tmp)
        os.replace(tmp, target)
        atomic_write_bytes(index, json.dumps({"digest": layer.digest, "size": layer.size}).encode())
    except OSError as exc:  # the cache is an optimisation: never fail a build over it
        log.warning("could not cache layer %s: %s", layer.digest, exc)
    return layer
