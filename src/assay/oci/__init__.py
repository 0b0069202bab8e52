"""assay.oci: digests, media types, deterministic layers, OCI layouts and archives, references.

The public names most callers need are re-exported here; each module documents its own API.
"""

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
