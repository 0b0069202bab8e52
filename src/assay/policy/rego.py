"""Rego evaluation (``policy.type: rego``) with regopy, an OPA-compatible engine.

As in policy-controller: the module must be ``package sigstore``; the query is
``isCompliant = data.sigstore.isCompliant``; the result is either a boolean or a (set of)
``{"result": bool, "error": str, "warning": str}`` objects.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

__all__ = ["QUERY", "RegoOutcome", "evaluate_rego"]

_log = logging.getLogger(__name__)

QUERY = "isCompliant = data.sigstore.isCompliant"
MAX_INPUT = 32 << 20


@dataclass(frozen=True)
class RegoOutcome:
    compliant: bool
    error: str = ""  # the policy's own error message, or why evaluation failed
    warning: str = ""
    broken: bool = False  # the module or input could not be evaluated at all


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def evaluate_rego(module: str, data: Any) -> RegoOutcome:
    """Evaluate ``module`` against ``data`` (the input document)."""
    try:
        from regopy import Interpreter, LogLevel, RegoError
    except ImportError:  # pragma: no cover - dependency missing
        return RegoOutcome(
            False, "Rego needs the 'regopy' package (pip install regopy)", broken=True
        )
    text = json.dumps(data, sort_keys=True)
    if len(text) > MAX_INPUT:
        return RegoOutcome(False, "Rego input is larger than 32 MiB", broken=True)
    interp = Interpreter()
    interp.log_level = LogLevel.NONE  # rego-cpp otherwise writes errors to file descriptor 1
    try:
        interp.add_module("policy.rego", module)
        interp.set_input_term(text)
        output = interp.query(QUERY)
    except RegoError as exc:
        return RegoOutcome(False, f"invalid Rego policy: {_one_line(str(exc))}", broken=True)
    if not output.ok():
        return RegoOutcome(
            False,
            "Rego evaluation failed (the module uses something regopy cannot evaluate, "
            "or has an error); test it with opa eval",
            broken=True,
        )
    text_out = str(output)
    if text_out.strip() == "undefined":
        return RegoOutcome(False)
    try:
        doc = json.loads(text_out)
    except ValueError:
        return RegoOutcome(False, "Rego evaluation returned no JSON result", broken=True)
    bindings = doc.get("bindings") if isinstance(doc, dict) else None
    if not isinstance(bindings, dict) or "isCompliant" not in bindings:
        return RegoOutcome(False, "policy is not compliant for query '" + QUERY + "'")
    return _interpret(bindings["isCompliant"])


def _set_elements(value: dict[str, Any]) -> list[Any] | None:
    """regopy renders a Rego set as ``{"<element JSON>": true, …}``."""
    if not value or not all(v is True for v in value.values()):
        return None
    elements = []
    for key in value:
        try:
            elements.append(json.loads(key))
        except ValueError:
            return None
    return elements


def _interpret(value: Any) -> RegoOutcome:
    if isinstance(value, bool):
        return RegoOutcome(value)
    candidates: list[Any]
    if isinstance(value, dict) and "result" in value:
        candidates = [value]
    elif isinstance(value, dict):
        candidates = _set_elements(value) or []
    elif isinstance(value, list):
        candidates = value
    else:
        candidates = []
    for item in candidates:
        if isinstance(item, dict) and isinstance(item.get("result"), bool):
            return RegoOutcome(
                item["result"],
                error=str(item.get("error") or ""),
                warning=str(item.get("warning") or ""),
            )
    return RegoOutcome(False)
