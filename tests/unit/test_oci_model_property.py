"""Property test: document parsers reject arbitrary JSON only with InputError."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from assay.errors import InputError
from assay.oci.model import parse_config, parse_index, parse_manifest

DIGEST = "sha256:" + "ab" * 32
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.text(max_size=20),
    st.sampled_from([DIGEST, "application/vnd.oci.image.manifest.v1+json", 2, "linux"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "schemaVersion",
                    "mediaType",
                    "config",
                    "layers",
                    "manifests",
                    "digest",
                    "size",
                    "annotations",
                    "platform",
                    "os",
                    "architecture",
                    "rootfs",
                    "diff_ids",
                    "x",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_parsers_raise_only_input_error(doc: object) -> None:
    raw = json.dumps(doc).encode()
    for parse in (parse_manifest, parse_index, parse_config):
        with contextlib.suppress(InputError):
            parse(raw)


def test_deep_nesting_is_an_input_error() -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    for parse in (parse_manifest, parse_index, parse_config):
        try:
            parse(raw)
        except InputError:
            continue
        raise AssertionError("deeply nested JSON was accepted")
