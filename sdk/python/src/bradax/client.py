"""``Full`` and ``Student``: the bradax broker's clients.

One :class:`Full` holds one ``httpx.Client`` and the project's credentials. It sends
``Authorization: Bearer <access token>`` on every call, renews the token shortly before it
expires (``expires_in``, or the JWT's ``exp``) and once more when the broker answers 401,
then retries the call once. Renewal uses ``POST /auth/refresh`` when a refresh token is
known, else ``POST /auth/token`` with the project's API key.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
import time
from collections import deque
from datetime import datetime
from decimal import Decimal
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence, Union
from urllib.parse import quote, urlsplit

import httpx

from . import errors
from ._sse import iter_events
from .errors import (
    AuthenticationError,
    BradaxConnectionError,
    BradaxError,
    RateLimitError,
    StreamError,
    StudentLimitError,
)
from .types import (
    DeployResult,
    Document,
    GraphEvent,
    GraphResult,
    Health,
    LLMResponse,
    MetricsResult,
    QueryResult,
    StreamEvent,
    TokenInfo,
    UpsertResult,
    Usage,
)

__all__ = ["Full", "Student", "LLM", "LLMStream", "VectorStore", "Graph", "GraphStream"]

VERSION = "0.1.0"

Message = Mapping[str, Any]
Messages = Union[str, Sequence[Message]]


def _jwt_exp(token: str) -> Optional[float]:
    """The ``exp`` claim of a JWT (unverified: only to know when to renew), as epoch seconds."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        exp = json.loads(base64.urlsafe_b64decode(payload)).get("exp")
        return float(exp) if isinstance(exp, (int, float)) else None
    except (IndexError, ValueError, TypeError, AttributeError):
        return None


def _api_base(base_url: str) -> str:
    """The contract's base URL ends in ``/api/v1``; a bare host gets it appended."""
    base = base_url.rstrip("/")
    if not urlsplit(base).path.endswith("/api/v1"):
        base += "/api/v1"
    return base


def _messages(messages: Messages) -> list[dict[str, Any]]:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [dict(m) for m in messages]


def _exact_json(resp: httpx.Response) -> Any:
    """The body with JSON numbers that have a fraction as Decimal (exact ``cost_usd``)."""
    return json.loads(resp.content.decode("utf-8"), parse_float=Decimal)


def _json(resp: httpx.Response) -> Any:
    try:
        return resp.json()
    except ValueError as e:
        raise BradaxError(
            f"the broker answered {resp.status_code} with a body that is not JSON",
            status=resp.status_code,
            error="invalid_response",
            headers=resp.headers,
            body=resp.text,
        ) from e


def _when(v: Union[None, str, datetime]) -> Optional[str]:
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.isoformat()
    return str(v)


class _Credentials:
    """The access token and how to get the next one. All access under ``lock``."""

    def __init__(
        self,
        token: Optional[str],
        refresh_token: Optional[str],
        project_id: Optional[str],
        api_key: Optional[str],
        scopes: Optional[Sequence[str]],
        expires_in: Optional[float],
    ) -> None:
        self.lock = threading.RLock()
        self.access = token
        self.refresh = refresh_token
        self.project_id = project_id
        self.api_key = api_key
        self.scopes = list(scopes) if scopes is not None else None
        self.expires_at: Optional[float] = None  # time.time() seconds
        self.granted: list[str] = []
        if token is not None:
            if expires_in is not None:
                self.expires_at = time.time() + float(expires_in)
            else:
                self.expires_at = _jwt_exp(token)

    def can_renew(self) -> bool:
        return bool(self.refresh) or bool(self.project_id and self.api_key)

    def store(self, info: TokenInfo) -> None:
        self.access = info.access_token
        if info.refresh_token:
            self.refresh = info.refresh_token
        exp = _jwt_exp(info.access_token)
        if info.expires_in is not None:
            exp = time.time() + info.expires_in
        self.expires_at = exp
        self.granted = info.scopes


class Full:
    """A client with the full tier's interface.

    Construct with an access ``token`` (and optionally its ``refresh_token``), or with
    ``project_id`` and ``api_key`` (the client then calls ``POST /auth/token`` itself, asking
    for ``scopes`` or, when ``None``, every scope the key holds). Without any of them the
    environment is read: ``BRADAX_TOKEN``, else ``BRADAX_PROJECT_ID`` + ``BRADAX_API_KEY``.

    ``base_url`` defaults to ``BRADAX_BASE_URL``; it is the contract's base (``…/api/v1``),
    and a bare ``http://host:port`` gets ``/api/v1`` appended.
    """

    tier = "full"

    def __init__(
        self,
        token: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        project_id: Optional[str] = None,
        api_key: Optional[str] = None,
        scopes: Optional[Sequence[str]] = None,
        refresh_token: Optional[str] = None,
        expires_in: Optional[float] = None,
        timeout: Union[float, httpx.Timeout] = 60.0,
        headers: Optional[Mapping[str, str]] = None,
        refresh_margin: float = 30.0,
        transport: Optional[httpx.BaseTransport] = None,
        http_client: Optional[httpx.Client] = None,
    ) -> None:
        base_url = base_url or os.environ.get("BRADAX_BASE_URL")
        if not base_url:
            raise ValueError("base_url is required (or set BRADAX_BASE_URL)")
        if token is None and api_key is None and refresh_token is None:
            token = os.environ.get("BRADAX_TOKEN") or None
            if token is None:
                project_id = project_id or os.environ.get("BRADAX_PROJECT_ID")
                api_key = os.environ.get("BRADAX_API_KEY") or None
        if token is None and refresh_token is None and not (project_id and api_key):
            raise ValueError(
                "give token=, or project_id= and api_key= (or set BRADAX_TOKEN, or "
                "BRADAX_PROJECT_ID and BRADAX_API_KEY)"
            )
        self.base_url = _api_base(base_url)
        self.refresh_margin = refresh_margin
        self._creds = _Credentials(token, refresh_token, project_id, api_key, scopes, expires_in)
        self._owns_client = http_client is None
        self._http = http_client or httpx.Client(
            timeout=timeout, transport=transport, follow_redirects=False
        )
        self._headers = {"user-agent": f"bradax-python/{VERSION}", "accept": "application/json"}
        self._headers.update(headers or {})

    # ----- lifecycle -------------------------------------------------------------------
    def close(self) -> None:
        if self._owns_client:
            self._http.close()

    def __enter__(self) -> "Full":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        name, pid = type(self).__name__, self._creds.project_id
        return f"{name}(base_url={self.base_url!r}, project_id={pid!r})"

    # ----- the surface -----------------------------------------------------------------
    def llm(self, model: str) -> "LLM":
        """A model handle: ``sdk.llm(model="gpt-4o-mini").invoke(messages=[...])``."""
        return LLM(self, model)

    def vectorstore(self, collection: str) -> "VectorStore":
        """A collection handle: ``.query(text, top_k=5)`` and ``.upsert(documents=[...])``."""
        return VectorStore(self, collection)

    def graph(self, name: str) -> "Graph":
        """A graph handle by name or ``graph_id``: ``.run(inputs={...})``, ``.deploy(yaml)``."""
        return Graph(self, name)

    def metrics(
        self,
        project_id: Optional[str] = None,
        start_time: Union[None, str, datetime] = None,
        end_time: Union[None, str, datetime] = None,
        **params: Any,
    ) -> MetricsResult:
        """``GET /metrics`` (the broker defaults to this project and the last 24 hours)."""
        q: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        if project_id is not None:
            q["project_id"] = project_id
        if start_time is not None:
            q["start_time"] = _when(start_time)
        if end_time is not None:
            q["end_time"] = _when(end_time)
        return MetricsResult.parse(_json(self._request("GET", "/metrics", params=q)))

    def health(self) -> Health:
        """``GET /health``; an unhealthy broker (503 with the health body) is returned, not
        raised: check ``.ok`` / ``.status``."""
        resp = self._send("GET", "/health")
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "status" in body and "checks" in body:
            return Health.parse(body, resp.status_code)
        if resp.status_code >= 400:
            raise errors.from_response(resp.status_code, resp.headers, resp.content)
        return Health.parse(body if isinstance(body, dict) else {}, resp.status_code)

    # ----- tokens ----------------------------------------------------------------------
    @property
    def token(self) -> Optional[str]:
        """The current access token (renewed as needed)."""
        return self._creds.access

    @property
    def scopes(self) -> list[str]:
        """The scopes the last ``auth/token`` or ``auth/refresh`` granted."""
        return list(self._creds.granted)

    def authenticate(self) -> TokenInfo:
        """``POST /auth/token`` with the project's API key, now."""
        c = self._creds
        if not (c.project_id and c.api_key):
            raise ValueError("authenticate() needs project_id and api_key")
        body: dict[str, Any] = {"project_id": c.project_id, "api_key": c.api_key}
        if c.scopes is not None:
            body["scopes"] = c.scopes
        info = TokenInfo.parse(_json(self._request("POST", "/auth/token", json=body, auth=False)))
        with c.lock:
            c.store(info)
        return info

    def refresh(self) -> TokenInfo:
        """``POST /auth/refresh`` with the current refresh token, now."""
        c = self._creds
        if not c.refresh:
            raise ValueError("no refresh token to refresh with")
        resp = self._request("POST", "/auth/refresh", json={"refresh_token": c.refresh}, auth=False)
        info = TokenInfo.parse(_json(resp))
        with c.lock:
            c.store(info)
        return info

    def _renew(self, used: Optional[str]) -> None:
        """New access token, unless another thread already replaced ``used``."""
        c = self._creds
        with c.lock:
            if used is not None and c.access is not None and c.access != used:
                return
            if c.refresh:
                try:
                    self.refresh()
                    return
                except AuthenticationError:
                    # a spent or revoked refresh token: the API key (if any) starts over
                    c.refresh = None
                    if not (c.project_id and c.api_key):
                        raise
            if c.project_id and c.api_key:
                self.authenticate()
                return
            raise AuthenticationError(
                "the access token expired and there is no refresh token or API key to renew it",
                error="authentication_failed",
                client_side=True,
            )

    def _bearer(self) -> str:
        c = self._creds
        with c.lock:
            stale = (
                c.access is None
                or c.expires_at is not None
                and time.time() >= c.expires_at - self.refresh_margin
            )
            if stale and (c.can_renew() or c.access is None):
                self._renew(c.access)
            assert c.access is not None
            return c.access

    # ----- HTTP ------------------------------------------------------------------------
    def _check(self, method: str, path: str) -> None:
        """Client-side limits before a request (``Student`` overrides)."""

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        stream: bool = False,
        token: Optional[str] = None,
    ) -> httpx.Response:
        h = dict(self._headers)
        if stream:
            h["accept"] = "text/event-stream"
        h.update(headers or {})
        if token is not None:
            h["authorization"] = f"Bearer {token}"
        req = self._http.build_request(
            method, self.base_url + path, json=json, params=params, headers=h
        )
        try:
            return self._http.send(req, stream=stream)
        except httpx.TimeoutException as e:
            raise BradaxConnectionError(f"timed out: {method} {path}", error="timeout") from e
        except httpx.TransportError as e:
            raise BradaxConnectionError(
                f"cannot reach the broker at {self.base_url}: {e}", error="connection_error"
            ) from e

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Optional[Mapping[str, Any]] = None,
        headers: Optional[Mapping[str, str]] = None,
        auth: bool = True,
        stream: bool = False,
    ) -> httpx.Response:
        """Send; on 401 renew the token once and resend; any other error status raises its
        typed exception. A streamed response is returned open (the caller closes it)."""
        if auth:
            self._check(method, path)
        for attempt in (0, 1):
            token = self._bearer() if auth else None
            resp = self._send(
                method, path, json=json, params=params, headers=headers, stream=stream, token=token
            )
            if resp.status_code < 400:
                return resp
            content = resp.read()
            resp.close()
            err = errors.from_response(resp.status_code, resp.headers, content)
            if (
                resp.status_code == 401
                and auth
                and attempt == 0
                and self._creds.can_renew()
            ):
                self._renew(token)
                continue
            raise err
        raise AssertionError("unreachable")


class Student(Full):
    """The student tier: the same interface, with its limits also enforced here, before any
    request (the broker enforces them too):

    - at most ``rpm`` requests in any 60 seconds (``RateLimitError`` with ``client_side``);
    - only the models in ``models`` (``StudentLimitError``);
    - no graph deploy (``StudentLimitError``).

    The defaults are the broker's defaults for the student tier (catraca's config
    ``bradax: {student_rpm: 20, student_models: [gpt-4o-mini]}``): :data:`STUDENT_RPM` and
    :data:`STUDENT_MODELS`; pass ``rpm=`` / ``models=`` when the operator configured others
    (the broker caps a student key's rpm at ``student_rpm``; a key made with a lower rpm is
    worth passing as ``rpm=``).
    """

    tier = "student"
    STUDENT_RPM = 20
    STUDENT_MODELS: tuple[str, ...] = ("gpt-4o-mini",)

    def __init__(
        self,
        token: Optional[str] = None,
        *,
        rpm: Optional[int] = None,
        models: Optional[Iterable[str]] = None,
        **kw: Any,
    ) -> None:
        super().__init__(token, **kw)
        self.rpm = self.STUDENT_RPM if rpm is None else int(rpm)
        self.models = frozenset(self.STUDENT_MODELS if models is None else models)
        self._sent: deque[float] = deque()
        self._rpm_lock = threading.Lock()

    def _check(self, method: str, path: str) -> None:
        now = time.monotonic()
        with self._rpm_lock:
            while self._sent and now - self._sent[0] >= 60.0:
                self._sent.popleft()
            if len(self._sent) >= self.rpm:
                retry = 60.0 - (now - self._sent[0])
                raise RateLimitError(
                    f"Student limit of {self.rpm} requests per minute reached; "
                    f"try again in {retry:.0f} seconds",
                    error="rate_limit_exceeded",
                    details=[
                        errors.ErrorDetail(
                            "RATE_LIMIT_EXCEEDED", f"Tente novamente em {retry:.0f} segundos"
                        )
                    ],
                    limit=self.rpm,
                    remaining=0,
                    window=60,
                    retry_after=retry,
                    client_side=True,
                )
            self._sent.append(now)

    def _check_model(self, model: str) -> None:
        if model not in self.models:
            allowed = ", ".join(sorted(self.models))
            raise StudentLimitError(
                f"model {model!r} is not available to the student tier (allowed: {allowed})",
                error="permission_denied",
                details=[errors.ErrorDetail("MODEL_NOT_ALLOWED", f"allowed: {allowed}")],
                client_side=True,
            )

    def _check_deploy(self) -> None:
        raise StudentLimitError(
            "the student tier cannot deploy graphs",
            error="permission_denied",
            details=[errors.ErrorDetail("DEPLOY_NOT_ALLOWED", "student projects run graphs only")],
            client_side=True,
        )


# ----- handles ---------------------------------------------------------------------------


class LLM:
    """``sdk.llm(model)``: ``invoke`` (one answer) and ``stream`` (deltas as they arrive).

    Keyword arguments besides ``messages`` are the request's ``parameters`` (``temperature``,
    ``max_tokens``, …); ``headers=`` adds HTTP headers to this one request."""

    def __init__(self, sdk: Full, model: str) -> None:
        self.sdk = sdk
        self.model = model

    def _body(self, messages: Messages, parameters: dict[str, Any]) -> dict[str, Any]:
        if isinstance(self.sdk, Student):
            self.sdk._check_model(self.model)
        extra = parameters.pop("parameters", None)
        if isinstance(extra, Mapping):
            parameters = {**extra, **parameters}
        body: dict[str, Any] = {"model": self.model, "messages": _messages(messages)}
        if parameters:
            body["parameters"] = parameters
        return body

    def invoke(
        self, messages: Messages, *, headers: Optional[Mapping[str, str]] = None, **parameters: Any
    ) -> LLMResponse:
        """``POST /llm/invoke``."""
        body = self._body(messages, parameters)
        resp = self.sdk._request("POST", "/llm/invoke", json=body, headers=headers)
        try:
            data = _exact_json(resp)
        except ValueError as e:
            raise BradaxError(
                "llm/invoke answered with a body that is not JSON",
                status=resp.status_code, error="invalid_response", body=resp.text,
            ) from e
        return LLMResponse.parse(data)

    def stream(
        self, messages: Messages, *, headers: Optional[Mapping[str, str]] = None, **parameters: Any
    ) -> "LLMStream":
        """``POST /llm/stream``: returns an :class:`LLMStream` to iterate (yields the text
        deltas; ``.events()`` yields :class:`StreamEvent`). HTTP errors raise here; a failure
        after the first byte raises :class:`~bradax.StreamError` from the iteration."""
        body = self._body(messages, parameters)
        body["stream"] = True
        resp = self.sdk._request("POST", "/llm/stream", json=body, headers=headers, stream=True)
        return LLMStream(resp)


class _EventStream:
    """An open SSE response decoded event by event (JSON data)."""

    def __init__(self, resp: httpx.Response) -> None:
        self._resp = resp
        self._consumed = False

    def _json_events(self) -> Iterator[dict[str, Any]]:
        if self._consumed:
            raise RuntimeError("a stream can be iterated once")
        self._consumed = True
        try:
            for ev in iter_events(self._resp.iter_bytes()):
                if ev.data.strip() == "[DONE]":
                    continue
                for data in _split_data(ev.data):
                    yield data
        except httpx.HTTPError as e:
            raise StreamError(
                f"the stream broke: {e}", error="stream_interrupted",
                partial=self._partial(), status=self._resp.status_code,
            ) from e
        finally:
            self._resp.close()

    def _partial(self) -> str:
        return ""

    def close(self) -> None:
        self._resp.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _split_data(data: str) -> list[dict[str, Any]]:
    """An event's data as JSON; a server that put several ``data:`` lines in one event
    (no blank line between them) gets each line parsed on its own."""
    try:
        v = json.loads(data, parse_float=Decimal)
        return [v] if isinstance(v, dict) else []
    except ValueError:
        pass
    out = []
    for line in data.split("\n"):
        try:
            v = json.loads(line, parse_float=Decimal)
        except ValueError as e:
            raise StreamError(
                f"a stream event is not JSON: {line[:200]!r}", error="invalid_event"
            ) from e
        if isinstance(v, dict):
            out.append(v)
    return out


_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def _stream_error(ev: Mapping[str, Any], partial: str, status: int) -> StreamError:
    err = ev.get("error")
    if isinstance(err, Mapping):
        fields = errors.error_fields({**err, "error": err.get("error") or err.get("type")})
        code = err.get("code")
        if isinstance(code, str) and code:
            # {"code": "STREAM_INTERRUPTED", "message": ...}: the code is the detail's
            fields["error"] = fields.get("error") or code.lower()
            if not fields["details"]:
                fields["details"] = [errors.ErrorDetail(code, str(err.get("message", "")))]
    else:
        fields = errors.error_fields(ev)
        if isinstance(err, str) and not _SNAKE.match(err):
            # a description rather than a kind: it is the message
            fields["error"] = None
            fields["message"] = fields.get("message") or err
    message = fields.pop("message", "") or str(ev.get("message") or "the stream failed")
    fields["error"] = fields.get("error") or "stream_error"
    return StreamError(message, partial=partial, status=status, body=dict(ev), **fields)


class LLMStream(_EventStream):
    """Iterate for the text deltas as they arrive. After the last event ``content`` holds the
    whole text and ``usage`` the final usage (with ``cost_usd``)."""

    def __init__(self, resp: httpx.Response) -> None:
        super().__init__(resp)
        self._parts: list[str] = []
        self.usage: Optional[Usage] = None
        self.finished = False

    @property
    def content(self) -> str:
        return "".join(self._parts)

    def _partial(self) -> str:
        return self.content

    def events(self) -> Iterator[StreamEvent]:
        for ev in self._json_events():
            if ev.get("error") is not None:
                raise _stream_error(ev, self.content, self._resp.status_code)
            delta = ev.get("delta")
            delta = delta if isinstance(delta, str) else ""
            finished = bool(ev.get("finished", False))
            usage = Usage.parse(ev.get("usage"))
            if delta:
                self._parts.append(delta)
            if usage is not None:
                self.usage = usage
            yield StreamEvent(delta, finished, usage, dict(ev))
            if finished:
                self.finished = True
                return
        if not self.finished:
            raise StreamError(
                "the stream ended before its last event", error="stream_incomplete",
                partial=self.content, status=self._resp.status_code,
            )

    def __iter__(self) -> Iterator[str]:
        for ev in self.events():
            if ev.delta:
                yield ev.delta

    def text(self) -> str:
        """Consume the stream and return the whole text."""
        for _ in self:
            pass
        return self.content


class VectorStore:
    """``sdk.vectorstore(collection)``."""

    def __init__(self, sdk: Full, collection: str) -> None:
        self.sdk = sdk
        self.collection = collection

    @property
    def _path(self) -> str:
        return "/vectors/" + quote(self.collection, safe="")

    def query(
        self,
        query_text: str,
        top_k: int = 5,
        *,
        threshold: Optional[float] = None,
        filters: Optional[Mapping[str, Any]] = None,
    ) -> QueryResult:
        """``POST /vectors/{collection}/query``: the ``top_k`` nearest documents by cosine,
        those below ``threshold`` left out, ``filters`` matched exactly against metadata."""
        body: dict[str, Any] = {"query_text": query_text, "top_k": top_k}
        if threshold is not None:
            body["threshold"] = threshold
        if filters is not None:
            body["filters"] = dict(filters)
        return QueryResult.parse(_json(self.sdk._request("POST", self._path + "/query", json=body)))

    def upsert(self, documents: Iterable[Union[Document, Mapping[str, Any]]]) -> UpsertResult:
        """``POST /vectors/{collection}/upsert``: all or nothing; documents without
        ``vector`` are embedded by the broker from their ``text``."""
        docs = [d.to_json() if isinstance(d, Document) else dict(d) for d in documents]
        resp = self.sdk._request("POST", self._path + "/upsert", json={"documents": docs})
        return UpsertResult.parse(_json(resp))


class Graph:
    """``sdk.graph(name)``: ``run`` executes by name or ``graph_id``; ``deploy`` publishes a
    definition under this name."""

    def __init__(self, sdk: Full, name: str) -> None:
        self.sdk = sdk
        self.name = name
        self.graph_id: Optional[str] = None
        self.version: Optional[str] = None

    def deploy(
        self, definition: Union[str, Mapping[str, Any]], format: str = "yaml"
    ) -> DeployResult:
        """``POST /graphs/deploy``. A mapping is sent as JSON text (``format`` ``json``).
        Problems in the definition raise :class:`~bradax.ValidationError` whose ``details``
        name each one (line and column, cycles, dangling references)."""
        if isinstance(self.sdk, Student):
            self.sdk._check_deploy()
        if not isinstance(definition, str):
            definition = json.dumps(definition)
            format = "json"
        body = {"name": self.name, "definition": definition, "format": format}
        res = DeployResult.parse(_json(self.sdk._request("POST", "/graphs/deploy", json=body)))
        self.graph_id, self.version = res.graph_id, res.version
        return res

    def run(
        self, inputs: Optional[Mapping[str, Any]] = None, stream: bool = False
    ) -> Union[GraphResult, "GraphStream"]:
        """``POST /graphs/{name}/execute``. ``stream=False`` returns a :class:`GraphResult`;
        ``stream=True`` a :class:`GraphStream` of per-node :class:`GraphEvent`."""
        path = "/graphs/" + quote(self.name, safe="") + "/execute"
        body = {"inputs": dict(inputs or {}), "stream": bool(stream)}
        resp = self.sdk._request("POST", path, json=body, stream=stream)
        if stream:
            return GraphStream(resp)
        return GraphResult.parse(_json(resp))

    execute = run


class GraphStream(_EventStream):
    """Iterate for :class:`GraphEvent` (one per node step, then the last with ``outputs``);
    after it, ``outputs`` and ``usage`` hold the run's. An event with ``error`` and
    ``finished`` raises :class:`~bradax.StreamError`."""

    def __init__(self, resp: httpx.Response) -> None:
        super().__init__(resp)
        self.outputs: Optional[Mapping[str, Any]] = None
        self.usage: Optional[Usage] = None
        self.finished = False

    def __iter__(self) -> Iterator[GraphEvent]:
        for raw in self._json_events():
            ev = GraphEvent.parse(raw)
            if ev.finished and raw.get("error") is not None:
                raise _stream_error(raw, "", self._resp.status_code)
            yield ev
            if ev.finished:
                self.finished = True
                self.outputs = ev.outputs
                self.usage = ev.usage
                return
        if not self.finished:
            raise StreamError(
                "the graph stream ended before its last event", error="stream_incomplete",
                status=self._resp.status_code,
            )
