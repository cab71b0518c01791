"""Typed exceptions for bradax's error shape.

Every error the broker sends has the body::

    {"error": "authentication_failed", "message": "...",
     "details": [{"code": "TOKEN_EXPIRED", "message": "..."}],
     "request_id": "...", "timestamp": "..."}

:func:`from_response` turns such a response into the subclass of :class:`BradaxError` that
matches its status. Errors the SDK raises before sending a request (``Student`` limits) are
the same classes with ``status`` ``None`` and ``client_side`` ``True``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional

__all__ = [
    "ErrorDetail",
    "BradaxError",
    "BradaxConnectionError",
    "AuthenticationError",
    "PermissionDeniedError",
    "StudentLimitError",
    "NotFoundError",
    "ConflictError",
    "QuotaExceededError",
    "ValidationError",
    "RateLimitError",
    "ServerError",
    "StreamError",
    "from_response",
]


@dataclass(frozen=True)
class ErrorDetail:
    """One entry of an error's ``details``: a machine code and a human message."""

    code: str
    message: str


class BradaxError(Exception):
    """Base of every error the SDK raises.

    Attributes mirror the wire shape: ``error`` (the snake_case kind, e.g.
    ``"rate_limit_exceeded"``), ``message``, ``details`` (a list of :class:`ErrorDetail`),
    ``request_id`` and ``timestamp``; plus the HTTP ``status`` (``None`` for errors raised
    before any request), the response ``headers`` and the raw ``body``.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        error: Optional[str] = None,
        details: Optional[list[ErrorDetail]] = None,
        request_id: Optional[str] = None,
        timestamp: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        body: Any = None,
        client_side: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error = error
        self.details: list[ErrorDetail] = list(details or [])
        self.request_id = request_id
        self.timestamp = timestamp
        self.headers: dict[str, str] = dict(headers or {})
        self.body = body
        self.client_side = client_side

    @property
    def codes(self) -> list[str]:
        """The ``code`` of every detail, in order."""
        return [d.code for d in self.details]

    def __str__(self) -> str:
        parts = []
        if self.status is not None:
            parts.append(str(self.status))
        if self.error:
            parts.append(self.error)
        head = " ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.details:
            text += " (" + "; ".join(f"{d.code}: {d.message}" for d in self.details) + ")"
        if self.request_id:
            text += f" [request_id={self.request_id}]"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class BradaxConnectionError(BradaxError):
    """The broker could not be reached or the connection broke (no HTTP status)."""


class AuthenticationError(BradaxError):
    """401: a missing, invalid, expired or revoked token or API key."""


class PermissionDeniedError(BradaxError):
    """403: the token lacks the scope, or the project or tier may not do this."""


class StudentLimitError(PermissionDeniedError):
    """A ``Student`` limit refused the call before any request (model not in the allow-list,
    graph deploy). The server refuses the same calls with 403."""


class QuotaExceededError(BradaxError):
    """402: the project's budget or prepaid balance is exhausted."""


class NotFoundError(BradaxError):
    """404: unknown collection, graph or route."""


class ConflictError(BradaxError):
    """409: the request conflicts with the current state."""


class ValidationError(BradaxError):
    """400 or 422: the request is malformed or breaks a rule; ``details`` say where."""


class RateLimitError(BradaxError):
    """429, or a ``Student`` client-side rate cap.

    ``limit``, ``remaining``, ``reset`` (epoch seconds) and ``window`` (seconds) come from the
    ``X-RateLimit-*`` headers; ``retry_after`` (seconds) from ``Retry-After``, else from
    ``reset``, else ``window``.
    """

    def __init__(self, message: str, **kw: Any) -> None:
        self.limit: Optional[int] = kw.pop("limit", None)
        self.remaining: Optional[int] = kw.pop("remaining", None)
        self.reset: Optional[int] = kw.pop("reset", None)
        self.window: Optional[int] = kw.pop("window", None)
        self.retry_after: Optional[float] = kw.pop("retry_after", None)
        super().__init__(message, **kw)


class ServerError(BradaxError):
    """5xx: the broker or an upstream provider failed."""


class StreamError(BradaxError):
    """A stream ended with an event carrying ``error`` (a failure after the first byte).

    ``partial`` holds the text received before the failure.
    """

    def __init__(self, message: str, *, partial: str = "", **kw: Any) -> None:
        self.partial = partial
        super().__init__(message, **kw)


_BY_STATUS: dict[int, type[BradaxError]] = {
    400: ValidationError,
    401: AuthenticationError,
    402: QuotaExceededError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}


def _int(v: Optional[str]) -> Optional[int]:
    if v is None:
        return None
    try:
        return int(v.strip())
    except ValueError:
        return None


def _float(v: Optional[str]) -> Optional[float]:
    if v is None:
        return None
    try:
        return float(v.strip())
    except ValueError:
        return None


def parse_details(raw: Any) -> list[ErrorDetail]:
    """``details`` as :class:`ErrorDetail` entries; tolerant of missing fields."""
    out: list[ErrorDetail] = []
    if not isinstance(raw, list):
        return out
    for d in raw:
        if isinstance(d, Mapping):
            out.append(ErrorDetail(str(d.get("code", "")), str(d.get("message", ""))))
        elif isinstance(d, str):
            out.append(ErrorDetail("", d))
    return out


def error_fields(body: Any) -> dict[str, Any]:
    """The bradax error fields of a decoded body (also an OpenAI-style ``{"error": {...}}``
    body, which an AI route may send when the failure happens before bradax's layer)."""
    if not isinstance(body, Mapping):
        return {}
    err = body.get("error")
    if isinstance(err, Mapping):  # OpenAI shape
        code = err.get("code") or err.get("type")
        details = [ErrorDetail(str(code), str(err.get("message", "")))] if code else []
        return {
            "error": str(err.get("type") or code or "error"),
            "message": str(err.get("message", "")),
            "details": details,
            "request_id": body.get("request_id"),
            "timestamp": body.get("timestamp"),
        }
    return {
        "error": None if err is None else str(err),
        "message": str(body.get("message") or body.get("detail") or ""),
        "details": parse_details(body.get("details")),
        "request_id": body.get("request_id"),
        "timestamp": body.get("timestamp"),
    }


def from_response(status: int, headers: Mapping[str, str], content: bytes) -> BradaxError:
    """The typed exception for an error response (``status`` >= 400)."""
    try:
        body: Any = json.loads(content.decode("utf-8")) if content else None
    except (ValueError, UnicodeDecodeError):
        body = content.decode("utf-8", "replace")
    fields = error_fields(body)
    message = fields.pop("message", "") or (
        body if isinstance(body, str) and body else f"HTTP {status}"
    )
    h = {k.lower(): v for k, v in headers.items()}
    request_id = fields.get("request_id") or h.get("x-request-id")
    fields["request_id"] = request_id
    if status >= 500:
        cls: type[BradaxError] = ServerError
    else:
        cls = _BY_STATUS.get(status, BradaxError)
    kw: dict[str, Any] = dict(fields, status=status, headers=h, body=body)
    if cls is RateLimitError:
        window = _int(h.get("x-ratelimit-window"))
        reset = _int(h.get("x-ratelimit-reset"))
        retry = _float(h.get("retry-after"))
        if retry is None and reset is not None:
            # the contract's X-RateLimit-Reset is epoch seconds; a small number is a delay
            retry = float(reset) if reset < 1_000_000_000 else max(0.0, reset - time.time())
        if retry is None and window is not None:
            retry = float(window)
        kw.update(
            limit=_int(h.get("x-ratelimit-limit")),
            remaining=_int(h.get("x-ratelimit-remaining")),
            reset=reset,
            window=window,
            retry_after=retry,
        )
    return cls(message, **kw)
