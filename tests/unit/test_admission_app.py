"""The ASGI app served by a real uvicorn on 127.0.0.1 (which runs its lifespan): readiness waits
for the policies, hostile bodies are refused, /metrics counts, and a deny is sent to a real HTTP
alert receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx
from test_admission_review import D_APP, AllowList

from assay.admission import Settings, Webhook, create_app
from assay.admission.alerts import WebhookAlert
from assay.admission.metrics import Metrics
from assay.errors import UsageError
from fixtures.asgiserve import running
from fixtures.assets import INTEROP
from fixtures.httpserve import serving

CAPTURE = INTEROP / "kube-apiserver-1.36.2"
DIGEST_BODY = (CAPTURE / "04-pod-create-digest-validate.json").read_bytes()


def _wait_ready(client: httpx.Client, seconds: float = 30) -> None:
    """Policies load in the background at start-up; under load that takes a moment."""
    deadline = time.monotonic() + seconds
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "the webhook never became ready"
        time.sleep(0.02)


def test_ready_only_after_policies_load_and_bodies_are_bounded() -> None:
    gate = threading.Event()

    def slow_load(m: Metrics) -> Webhook:
        gate.wait(10)
        return Webhook(AllowList(allowed={D_APP}), Settings(), metrics=m)

    with running(create_app(slow_load)) as client:
        assert client.get("/healthz").status_code == 200  # alive while loading
        r = client.get("/readyz")
        assert r.status_code == 503 and "loading policies" in r.text
        assert client.post("/validate", content=DIGEST_BODY).status_code == 503
        gate.set()
        deadline = time.monotonic() + 10
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    app = create_app(lambda m: Webhook(AllowList(allowed={D_APP}), Settings(), metrics=m))
    with running(app) as client:
        assert client.get("/healthz").status_code == 200
        _wait_ready(client)
        r = client.post("/validate", content=DIGEST_BODY)
        assert r.status_code == 200 and r.json()["response"]["allowed"] is True
        assert client.post("/validate", content=b"{" * 10).status_code == 400
        big = client.post("/validate", content=b" " * (4 << 20))
        assert big.status_code == 400 and "over" in big.text
        assert client.get("/validate").status_code == 405
        metrics = client.get("/metrics").text
        assert 'assay_admission_requests_total{allowed="true",path="validate"} 1.0' in metrics
        assert "assay_admission_ready 1.0" in metrics


def test_not_ready_when_policies_fail_to_load() -> None:
    def load(m: Metrics) -> Webhook:
        raise UsageError("policies/bad.yaml: document 1: spec.images is required")

    with running(create_app(load)) as client:
        deadline = time.monotonic() + 10
        while "loading" in (r := client.get("/readyz")).text and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.status_code == 503 and "spec.images is required" in r.text
        assert client.post("/validate", content=DIGEST_BODY).status_code == 503
        assert client.get("/healthz").status_code == 200


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Receiver.got.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_deny_is_posted_to_the_alert_receiver_but_not_a_dry_run() -> None:
    _Receiver.got = []
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)) as base:
        url = base + "/hook"
        alert = WebhookAlert(url)
        app = create_app(lambda m: Webhook(AllowList(), Settings(), metrics=m, alert=alert))
        dry = json.loads((CAPTURE / "12-pod-create-dryrun-validate.json").read_text())
        dry["request"]["object"]["spec"]["containers"][0]["image"] = f"x.example/a@{D_APP}"
        with running(app) as client:
            _wait_ready(client)
            client.post("/validate", content=json.dumps(dry))
            assert client.post("/validate", content=DIGEST_BODY).json()["response"]["allowed"] is (
                False
            )
            deadline = time.monotonic() + 10
            while not _Receiver.got and time.monotonic() < deadline:
                time.sleep(0.05)
        assert len(_Receiver.got) == 1  # the dry run sent nothing
        text = _Receiver.got[0]["text"]
        assert set(_Receiver.got[0]) == {"text"}
        assert "capture-test/pod-digest" in text and "failed policy" in text and "admin" in text


def test_alert_url_must_be_http() -> None:
    try:
        WebhookAlert("file:///etc/passwd")
    except ValueError as e:
        assert "http" in str(e)
    else:
        raise AssertionError("a file: URL was accepted")
