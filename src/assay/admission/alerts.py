"""Alert receivers: an HTTP POST of Slack-style JSON (``{"text": "…"}``) for each deny.

Sent in the background so an alert receiver never delays or changes an admission decision;
failures are logged, not retried. Each alert must be delivered within ``timeout`` seconds in all
(:func:`assay._http.async_deadline`): a receiver that trickles its answer is cut off, not waited
on forever.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from assay._http import async_deadline
from assay.errors import NetworkError

__all__ = ["WebhookAlert"]

log = logging.getLogger(__name__)


class WebhookAlert:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"alert URL {url!r} must be http:// or https://")
        self.url = url
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, text: str) -> None:
        """Queue one alert; call from inside the running event loop."""
        task = asyncio.get_running_loop().create_task(self._send(text))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, text: str) -> None:
        try:
            async with (
                async_deadline(f"alert to {self.url}", self.timeout),
                # no transport of its own: httpx itself honours HTTP(S)_PROXY/NO_PROXY, as the
                # sync clients of assay._http.client_transports do
                httpx.AsyncClient(timeout=self.timeout) as client,
            ):
                resp = await client.post(self.url, json={"text": text})
            if resp.status_code >= 300:
                log.warning("alert receiver %s answered HTTP %d", self.url, resp.status_code)
        except (httpx.HTTPError, NetworkError) as e:
            log.warning("alert receiver %s not reached: %s", self.url, e)

    async def drain(self) -> None:
        """Wait for alerts in flight (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
