"""ASGI middleware: request bodies are size-limited before the app reads a byte of them.

A declared `Content-Length` over the limit is refused at once with 413; a body without one
(chunked) is counted as it arrives and refused the moment it passes the limit. Photo routes get
`upload_limit`, every other route `default_limit`. Security headers are added to every response.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
]


class BodyTooLarge(HTTPException):
    """Raised from `receive` when a body passes its limit (FastAPI re-raises HTTPExceptions)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


def _size(limit: int) -> str:
    return f"{limit / 2**20:.1f} MiB" if limit >= 2**20 else f"{limit // 1024} KiB"


class BodyLimitMiddleware:
    """`upload_message`: what a refused photo upload is told (the per-photo limit from the
    settings, in the app's words); other routes are told their own limit."""

    def __init__(self, app: ASGIApp, *, upload_paths: tuple[str, ...], upload_limit: int,
                 default_limit: int = 64 * 1024, upload_message: str | None = None) -> None:
        self.app = app
        self.upload_paths = upload_paths
        self.upload_limit = upload_limit
        self.default_limit = default_limit
        self.upload_message = upload_message or (
            f"the photos sent are larger than {_size(upload_limit)} together: send smaller "
            "photos")

    def _message(self, path: str) -> str:
        if path in self.upload_paths:
            return self.upload_message
        return (f"the request is larger than {_size(self.default_limit)}, the most this "
                "route takes: send less")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        limit = (self.upload_limit if scope["path"] in self.upload_paths
                 else self.default_limit)
        refusal = self._message(scope["path"])
        declared = None
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
        if declared is not None and (declared < 0 or declared > limit):
            await _refuse(send_with_headers, refusal)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(refusal)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send_with_headers(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await _refuse(send_with_headers, refusal)


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps({"error": "upload_too_large", "message": message}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
