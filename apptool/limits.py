"""Caps on what one request to the hub may carry, so no user can fill its memory or disk.

Gradio caps each uploaded file (``max_file_size``) but neither the number of
files in one upload nor the size of a JSON request: a 96 MB "stroke" posted to
an endpoint was parsed whole.  :class:`RequestLimits` refuses an oversized
request body with 413 before the app reads it, and :func:`parse_json` caps a
text field that carries JSON by characters and by the number of values in it.
"""

from __future__ import annotations

import json
from typing import Any

from apptool.errors import InputError

#: Largest body of a request that is not a file upload (event data, text boxes, JSON): bytes.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
#: Most files in one upload request, and the largest file (gradio's ``max_file_size``).
MAX_FILES_PER_REQUEST = 4
MAX_FILE_MB = 25
#: Largest text a JSON field may hold (characters) and the most values (numbers, strings, lists, objects) in it.
MAX_TEXT_CHARS = 2_000_000
MAX_JSON_VALUES = 250_000
#: Room for the multipart headers around the files of one upload.
MULTIPART_SLACK = 64 * 1024


def parse_json(text: str, what: str, max_chars: int = MAX_TEXT_CHARS, max_values: int = MAX_JSON_VALUES) -> Any:
    """``text`` parsed as JSON, or an InputError naming ``what`` if it is too long, has too many values or is not JSON."""
    if len(text) > max_chars:
        raise InputError(f"{what}: {len(text):,} characters, more than the limit of {max_chars:,}")
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InputError(f"{what}: not valid JSON ({exc})") from None
    count, pending = 0, [value]
    while pending:
        item = pending.pop()
        count += 1
        if count > max_values:
            raise InputError(f"{what}: more than the limit of {max_values:,} values")
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
    return value


class OverLimit(Exception):
    """A request body went past its cap while the app was reading it."""


class RequestLimits:
    """ASGI middleware: a request whose body (or number of uploaded files) is over its cap gets 413, unread.

    The declared Content-Length is checked first.  A body sent without one is
    read in full (up to the cap) before the app sees it, or, for an upload,
    counted as the app reads it, and the app is stopped where it passes the cap.
    """

    def __init__(
        self, app, max_body: int = MAX_REQUEST_BYTES, max_files: int = MAX_FILES_PER_REQUEST, max_file_mb: int = MAX_FILE_MB
    ):
        self.app, self.max_body, self.max_files = app, max_body, max_files
        self.max_upload = max_files * max_file_mb * 1024 * 1024 + MULTIPART_SLACK

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        upload = scope["path"].rstrip("/").endswith("/upload")
        limit = self.max_upload if upload else self.max_body
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            return await _refuse(send, _too_large(int(declared), limit, upload, self.max_files))
        if not upload and not declared.isdigit():  # small enough to hold: read it all, then hand it on
            return await self._buffered(scope, receive, send, limit)
        boundary = _boundary(headers.get(b"content-type", b"")) if upload else None
        counter = _BodyCounter(receive, limit, boundary, self.max_files, upload)
        started = False

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counter.receive, watched_send)
        except OverLimit as exc:
            if not started:
                await _refuse(send, str(exc))

    async def _buffered(self, scope, receive, send, limit: int):
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                return await _refuse(send, _too_large(size, limit, False, self.max_files))
            if not message.get("more_body"):
                break
        pending = iter(messages)

        async def replay():
            return next(pending, None) or await receive()

        await self.app(scope, replay, send)


class _BodyCounter:
    """Counts the bytes (and, for an upload, the multipart parts) of a body as it is received."""

    def __init__(self, receive, limit: int, boundary: bytes | None, max_files: int, upload: bool):
        self._receive, self.limit, self.max_files, self.upload = receive, limit, max_files, upload
        self.marker = b"--" + boundary if boundary else None
        self.size = self.markers = 0
        self.tail = b""

    async def receive(self):
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        chunk = message.get("body", b"")
        self.size += len(chunk)
        if self.size > self.limit:
            raise OverLimit(_too_large(self.size, self.limit, self.upload, self.max_files))
        if self.marker:  # every part opens with --boundary, and one more closes the body
            window = self.tail + chunk
            self.markers += window.count(self.marker)
            self.tail = window[-(len(self.marker) - 1) :]
            if self.markers - 1 > self.max_files:
                raise OverLimit(f"more than {self.max_files} files in one upload; send at most {self.max_files} at a time")
        return message


def _boundary(content_type: bytes) -> bytes | None:
    for part in content_type.split(b";"):
        key, _, value = part.strip().partition(b"=")
        if key.lower() == b"boundary" and value:
            return value.strip(b'"')
    return None


def _too_large(size: int, limit: int, upload: bool, max_files: int) -> str:
    what = f"an upload of up to {max_files} files" if upload else "a request that is not a file upload"
    return f"request body of {size:,} bytes or more is over the limit of {limit:,} bytes for {what}"


async def _refuse(send, message: str) -> None:
    body = message.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
