"""CUE policies (no CUE evaluator is packaged for Debian or PyPI that assay can run): a clear
``error`` at decision time, denied, never a pass (real registry, assay signatures)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from assay.oci.registry import RegistryClient
from assay.policy import Engine, load_policies
from integration.policy_helpers import attest, cip, key_authority, new_key, push_image, sign

CUE_ATT = """\
    attestations:
    - name: custom
      predicateType: https://cosign.sigstore.dev/attestation/v1
      policy:
        type: cue
        data: |
          predicateType: "https://cosign.sigstore.dev/attestation/v1"
"""


def test_cue_policies_are_an_error_with_the_reason(registry: Any, tmp_path: Path) -> None:
    key, pub = new_key()
    repo = f"cue/{uuid.uuid4().hex[:8]}/img"
    with RegistryClient(registry.host) as client:
        push_image(client, repo, "v1", label="cue")
        ref = f"{registry.host}/{repo}:v1"
        sign(client, ref, key)
        attest(client, ref, key, "custom", b"hello")
    att_level = tmp_path / "att.yaml"
    att_level.write_text(cip("att-cue", "**", key_authority(pub, extra=CUE_ATT, name="k")))
    cip_level = tmp_path / "cip.yaml"
    cip_level.write_text(
        cip("cip-cue", "**", key_authority(pub, name="k"))
        + "  policy:\n    type: cue\n    data: |\n      authorityMatches: {}\n"
    )
    for path, where in ((att_level, "authorities"), (cip_level, "reason")):
        with Engine(load_policies([path])) as engine:
            decision = engine.decide([ref])
        image = decision.images[0]
        assert not decision.allowed and image.status == "error", image.message
        assert "policy type cue is not supported (no CUE evaluator)" in image.message, where
