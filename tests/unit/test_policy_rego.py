"""Rego evaluation with regopy: policy-controller's result shapes."""

from __future__ import annotations

import pytest

from assay.policy.rego import evaluate_rego

BOOL = """package sigstore
default isCompliant = false
isCompliant {
  input.predicate.Data == "foobar e2e test"
}
"""

RESPONSE = """package sigstore
isCompliant[response] {
  high := [v | v := input.vulns[_]; v == "HIGH"]
  response := {"result": count(high) == 0, "error": sprintf("Found HIGH '%d'", [count(high)]),
               "warning": "look"}
}
"""


def test_boolean() -> None:
    assert evaluate_rego(BOOL, {"predicate": {"Data": "foobar e2e test"}}).compliant
    out = evaluate_rego(BOOL, {"predicate": {"Data": "nope"}})
    assert not out.compliant and not out.broken


def test_response_object() -> None:
    bad = evaluate_rego(RESPONSE, {"vulns": ["HIGH", "LOW", "HIGH"]})
    assert not bad.compliant and bad.error == "Found HIGH '2'" and bad.warning == "look"
    good = evaluate_rego(RESPONSE, {"vulns": ["LOW"]})
    assert good.compliant and good.warning == "look"


def test_undefined_is_not_compliant() -> None:
    module = "package sigstore\nisCompliant {\n  input.x == 1\n}\n"
    out = evaluate_rego(module, {"x": 2})
    assert not out.compliant and not out.broken


@pytest.mark.parametrize(
    "module",
    [
        "package sigstore\nisCompliant { syntax",
        # rego-cpp cannot evaluate an iteration inside a call argument (policy-catalog's
        # maximum-image-age-rego): reported as broken, never as compliant
        "package sigstore\nisCompliant[r] {\n  t := time.parse_rfc3339_ns(input.c[_].d)\n"
        '  r := {"result": true}\n}\n',
    ],
)
def test_broken_module_is_reported_and_prints_nothing(
    module: str, capfd: pytest.CaptureFixture[str]
) -> None:
    out = evaluate_rego(module, {"c": [{"d": "2020-01-01T00:00:00Z"}]})
    assert out.broken and not out.compliant and out.error
    captured = capfd.readouterr()
    assert captured.out == ""
