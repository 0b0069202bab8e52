"""The shipped automation: the GitHub Actions workflow and the Kubernetes CronJob."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "examples" / "github-actions" / "assay-update.yml"
CRONJOB = ROOT / "deploy" / "assay-update-cronjob.yaml"


def test_workflow_shape() -> None:
    doc: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    on = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on is not None and "schedule" in on and on["schedule"][0]["cron"]
    steps = doc["jobs"]["update"]["steps"]
    assert all(("uses" in s) != ("run" in s) for s in steps), "each step: exactly uses or run"
    runs = " ".join(s.get("run", "") for s in steps)
    assert "assay update" in runs and "-o markdown" in runs and "--exit-code" in runs
    pr = next(s for s in steps if s.get("uses", "").startswith("peter-evans/create-pull-request"))
    assert pr["with"]["body-path"].endswith("PR.md")


def test_cronjob_validates_against_the_kubernetes_schema() -> None:
    docs = [d for d in yaml.safe_load_all(CRONJOB.read_text()) if d]
    assert [d["kind"] for d in docs] == ["CronJob"]
    version = kubernetes_validate.latest_version()
    kubernetes_validate.validate(docs[0], version, strict=True)
    pod = docs[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[:2] == ["update", "/work/app.yaml"] and "--push" in args and "--sign-key" in args
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["ASSAY_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "assay-signing"


def test_cronjob_check_can_fail() -> None:
    doc = next(d for d in yaml.safe_load_all(CRONJOB.read_text()) if d)
    doc["spec"]["schedule"] = 5  # wrong type: the schema check must reject it
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
