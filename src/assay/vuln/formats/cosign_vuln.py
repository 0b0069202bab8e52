"""cosign's vulnerability attestation predicate (``https://cosign.sigstore.dev/attestation/vuln/v1``).

The predicate wraps a scanner's own report: ``scanner`` names the tool, its version and the
database it used, ``scanner.result`` holds assay's scan JSON unchanged, and ``metadata`` says when
the scan started and finished — what ``maxScanAgeDays`` policies and the compliance report read.
``assay scan -o cosign-vuln --file F`` then ``assay attest IMAGE --type vuln --predicate F``.
"""

from __future__ import annotations

import json

from assay import __version__
from assay.errors import UsageError
from assay.vuln.formats.json_format import result_to_json
from assay.vuln.model import ScanResult

__all__ = ["SCANNER_URI", "CosignVulnFormatter"]

SCANNER_URI = "pkg:generic/assay"


class CosignVulnFormatter:
    def render(self, result: ScanResult) -> str:
        if not (result.started and result.finished):
            raise UsageError(
                "-o cosign-vuln needs the times of a scan: write it with "
                "`assay scan -o cosign-vuln`"
            )
        dates = sorted(result.db_built.values())
        predicate = {
            "invocation": {"parameters": None, "uri": "", "event_id": "", "builder.id": ""},
            "scanner": {
                "uri": SCANNER_URI,
                "version": __version__,
                # the oldest feed bounds how current the scan's knowledge was
                "db": {"uri": "", "version": dates[0] if dates else ""},
                "result": result_to_json(result),
            },
            "metadata": {"scanStartedOn": result.started, "scanFinishedOn": result.finished},
        }
        return json.dumps(predicate, indent=2, ensure_ascii=False) + "\n"
