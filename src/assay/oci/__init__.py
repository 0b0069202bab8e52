"""assay.oci: digests, media types, deterministic layers, OCI layouts and archives, references.

The public names most callers need are re-exported here; each module documents its own API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from assay._lazy import lazy_exports

if TYPE_CHECKING:
    from assay.oci.archive import OciArchive, write_oci_archive
    from assay.oci.digest import Digest, parse_digest, sha256_digest
    from assay.oci.entry import Entry, EntryType
    from assay.oci.jsonc import canonical_json
    from assay.oci.layer import LayerBlob, apply_layers, read_layer, write_layer
    from assay.oci.layout import OciLayout, staged_layout, write_layout_atomically
    from assay.oci.model import Descriptor, Platform
    from assay.oci.reference import ImageRef, parse_image_ref
    from assay.oci.source import ImageManifest, ImageSource, open_image

__all__ = [
    "Descriptor",
    "Digest",
    "Entry",
    "EntryType",
    "ImageManifest",
    "ImageRef",
    "ImageSource",
    "LayerBlob",
    "OciArchive",
    "OciLayout",
    "Platform",
    "apply_layers",
    "canonical_json",
    "open_image",
    "parse_digest",
    "parse_image_ref",
    "read_layer",
    "sha256_digest",
    "staged_layout",
    "write_layer",
    "write_layout_atomically",
    "write_oci_archive",
]

# Imported on first use (PEP 562), so importing one submodule does not load every other one.
_EXPORTS = {
    "Descriptor": "assay.oci.model",
    "Digest": "assay.oci.digest",
    "Entry": "assay.oci.entry",
    "EntryType": "assay.oci.entry",
    "ImageManifest": "assay.oci.source",
    "ImageRef": "assay.oci.reference",
    "ImageSource": "assay.oci.source",
    "LayerBlob": "assay.oci.layer",
    "OciArchive": "assay.oci.archive",
    "OciLayout": "assay.oci.layout",
    "Platform": "assay.oci.model",
    "apply_layers": "assay.oci.layer",
    "canonical_json": "assay.oci.jsonc",
    "open_image": "assay.oci.source",
    "parse_digest": "assay.oci.digest",
    "parse_image_ref": "assay.oci.reference",
    "read_layer": "assay.oci.layer",
    "sha256_digest": "assay.oci.digest",
    "staged_layout": "assay.oci.layout",
    "write_layer": "assay.oci.layer",
    "write_layout_atomically": "assay.oci.layout",
    "write_oci_archive": "assay.oci.archive",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
