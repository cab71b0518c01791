"""Unit tests: the SDK against an httpx.MockTransport (no network).

Error mapping, SSE parsing (incremental, every chunking), token renewal, request shapes and
the Student tier's client-side limits.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from decimal import Decimal

import httpx
import pytest

import bradax
from bradax import (
    AuthenticationError,
    BradaxConnectionError,
    BradaxError,
    ConflictError,
    Document,
    Full,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    StreamError,
    Student,
    StudentLimitError,
    ValidationError,
)
from bradax._sse import SSEDecoder, iter_events

BASE = "http://broker.test/api/v1"


def err_body(error: str, message: str, code: str, detail: str = "d") -> dict:
    return {
        "error": error,
        "message": message,
        "details": [{"code": code, "message": detail}],
        "request_id": "req-123",
        "timestamp": "2025-07-25T15:45:00Z",
    }


class Recorder:
    """A MockTransport handler that answers from a queue and records the requests."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        a = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return a(request) if callable(a) else a

    def body(self, i: int) -> dict:
        return json.loads(self.requests[i].content)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


def sdk_with(rec: Recorder, cls=Full, **kw) -> Full:
    kw.setdefault("token", "tok-1")
    return cls(base_url=BASE, transport=httpx.MockTransport(rec), **kw)


def jwt(exp: float) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    return f"{enc({'alg': 'HS256'})}.{enc({'exp': int(exp), 'aud': 'bradax'})}.sig"


def token_answer(access: str, refresh: str, expires_in: int = 900) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": expires_in,
            "token_type": "Bearer",
            "scopes": ["invoke_llm"],
            "timestamp": "2025-07-25T15:45:00Z",
        },
    )


LLM_OK = httpx.Response(
    200,
    json={
        "content": "Para casos de roubo",
        "model": "gpt-4o-mini",
        "usage": {"prompt_tokens": 45, "completion_tokens": 150, "total_tokens": 195, "cost_usd": 0.000123},
        "timestamp": "2025-07-25T15:45:00Z",
    },
)

# ----- construction ------------------------------------------------------------------------


def test_base_url_from_env_and_api_v1_appended(monkeypatch):
    monkeypatch.setenv("BRADAX_BASE_URL", "http://127.0.0.1:9/")
    sdk = Full(token="t")
    assert sdk.base_url == "http://127.0.0.1:9/api/v1"
    assert Full(token="t", base_url="https://b.example/api/v1/").base_url == "https://b.example/api/v1"


def test_missing_base_url_or_credentials_is_a_clear_error(monkeypatch):
    for v in ("BRADAX_BASE_URL", "BRADAX_TOKEN", "BRADAX_PROJECT_ID", "BRADAX_API_KEY"):
        monkeypatch.delenv(v, raising=False)
    with pytest.raises(ValueError, match="BRADAX_BASE_URL"):
        Full(token="t")
    with pytest.raises(ValueError, match="api_key"):
        Full(base_url=BASE)
    monkeypatch.setenv("BRADAX_PROJECT_ID", "p")
    monkeypatch.setenv("BRADAX_API_KEY", "bx_live_x")
    assert Full(base_url=BASE)._creds.api_key == "bx_live_x"


# ----- error mapping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "status,cls",
    [
        (400, ValidationError),
        (401, AuthenticationError),
        (402, bradax.QuotaExceededError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, ValidationError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (418, BradaxError),
    ],
)
def test_each_status_raises_its_typed_error_with_every_field(status, cls):
    rec = Recorder(httpx.Response(status, json=err_body("some_error", "Mensagem", "SOME_CODE", "detalhe")))
    sdk = sdk_with(rec, token="static")  # no way to renew: a 401 is raised as is
    with pytest.raises(cls) as ei:
        sdk.vectorstore("claims").query("roubo")
    e = ei.value
    assert type(e) is cls
    assert isinstance(e, BradaxError)
    assert e.status == status
    assert e.error == "some_error"
    assert e.message == "Mensagem"
    assert e.details == [bradax.ErrorDetail("SOME_CODE", "detalhe")]
    assert e.codes == ["SOME_CODE"]
    assert e.request_id == "req-123"
    assert e.timestamp == "2025-07-25T15:45:00Z"
    assert not e.client_side
    assert "Mensagem" in str(e) and "req-123" in str(e) and str(status) in str(e)
    assert len(rec.requests) == 1


def test_rate_limit_error_reads_the_rate_limit_headers():
    body = {
        "error": "rate_limit_exceeded",
        "message": "Limite de 500 requisições por minuto excedido",
        "details": [{"code": "RATE_LIMIT_EXCEEDED", "message": "Tente novamente em 15 segundos"}],
    }
    reset = int(time.time()) + 15
    headers = {
        "X-RateLimit-Limit": "500",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset),
        "X-RateLimit-Window": "60",
    }
    rec = Recorder(httpx.Response(429, json=body, headers=headers))
    with pytest.raises(RateLimitError) as ei:
        sdk_with(rec).llm("gpt-4o-mini").invoke("oi")
    e = ei.value
    assert (e.limit, e.remaining, e.reset, e.window) == (500, 0, reset, 60)
    assert 10 <= e.retry_after <= 15
    assert e.request_id is None and e.timestamp is None  # the contract's 429 body has neither
    # Retry-After wins when present
    headers["Retry-After"] = "7"
    rec = Recorder(httpx.Response(429, json=body, headers=headers))
    with pytest.raises(RateLimitError) as ei:
        sdk_with(rec).llm("gpt-4o-mini").invoke("oi")
    assert ei.value.retry_after == 7.0


def test_openai_shaped_and_non_json_error_bodies_still_map():
    rec = Recorder(
        httpx.Response(
            404,
            json={"error": {"message": "model x not found", "type": "invalid_request_error", "code": "model_not_found"}},
            headers={"x-request-id": "rid-9"},
        )
    )
    with pytest.raises(NotFoundError) as ei:
        sdk_with(rec).llm("x").invoke("oi")
    assert ei.value.message == "model x not found"
    assert ei.value.codes == ["model_not_found"]
    assert ei.value.request_id == "rid-9"
    rec = Recorder(httpx.Response(502, text="Bad Gateway"))
    with pytest.raises(ServerError) as ei:
        sdk_with(rec).llm("x").invoke("oi")
    assert ei.value.message == "Bad Gateway" and ei.value.status == 502


def test_connection_failure_is_a_bradax_error():
    def boom(req):
        raise httpx.ConnectError("refused", request=req)

    sdk = Full(token="t", base_url=BASE, transport=httpx.MockTransport(boom))
    with pytest.raises(BradaxConnectionError) as ei:
        sdk.health()
    assert ei.value.status is None


# ----- request shapes ----------------------------------------------------------------------


def test_invoke_sends_the_contract_body_and_returns_a_typed_exact_result():
    rec = Recorder(LLM_OK)
    sdk = sdk_with(rec)
    msgs = [{"role": "system", "content": "Perito"}, {"role": "user", "content": "Roubo?"}]
    r = sdk.llm(model="gpt-4o-mini").invoke(messages=msgs, temperature=0.7, max_tokens=1000)
    req = rec.requests[0]
    assert req.method == "POST" and req.url.path == "/api/v1/llm/invoke"
    assert req.headers["authorization"] == "Bearer tok-1"
    assert rec.body(0) == {
        "model": "gpt-4o-mini",
        "messages": msgs,
        "parameters": {"temperature": 0.7, "max_tokens": 1000},
    }
    assert r.content == "Para casos de roubo" and r.model == "gpt-4o-mini"
    assert r.usage.total_tokens == 195
    assert r.usage.cost_usd == Decimal("0.000123")  # exact, not a float
    assert r.timestamp == "2025-07-25T15:45:00Z"
    # a plain string is one user message; no parameters → no key
    sdk.llm("gpt-4o-mini").invoke("oi", headers={"x-mock-latency-ms": "1"})
    assert rec.body(1) == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "oi"}]}
    assert rec.requests[1].headers["x-mock-latency-ms"] == "1"


def test_vectors_graphs_metrics_and_health_requests():
    answers = {
        "/api/v1/vectors/claims%2Fx/query": httpx.Response(
            200,
            json={
                "results": [{"id": "doc_1", "score": 0.95, "metadata": {"category": "sinistros"}, "text": "Em casos"}],
                "timestamp": "t",
            },
        ),
        "/api/v1/vectors/claims/upsert": httpx.Response(200, json={"upserted": 2, "timestamp": "t"}),
        "/api/v1/graphs/deploy": httpx.Response(200, json={"graph_id": "graph_1", "version": "1.0.0", "success": True, "timestamp": "t"}),
        "/api/v1/graphs/pipeline_fraude/execute": httpx.Response(
            200,
            json={
                "execution_id": "e1",
                "graph_id": "graph_1",
                "version": "1.0.0",
                "status": "completed",
                "outputs": {"answer": "ok"},
                "usage": {"total_tokens": 3, "cost_usd": 0.5},
                "timestamp": "t",
            },
        ),
        "/api/v1/metrics": httpx.Response(
            200,
            json={"metrics": [{"name": "llm_requests_total", "type": "counter", "value": 3, "labels": {"model": "m"}, "timestamp": "t"}]},
        ),
        "/api/v1/health": httpx.Response(503, json={"status": "unhealthy", "checks": {"database": "unhealthy"}, "timestamp": "t"}),
    }
    rec = Recorder(lambda req: answers[req.url.raw_path.decode().split("?")[0]])
    sdk = sdk_with(rec)

    q = sdk.vectorstore("claims/x").query("roubo veículo", top_k=3)
    assert rec.body(0) == {"query_text": "roubo veículo", "top_k": 3}  # no threshold/filters sent
    assert len(q) == 1 and q[0].id == "doc_1" and q[0].score == 0.95 and q[0].metadata == {"category": "sinistros"}
    assert [m.text for m in q] == ["Em casos"]
    sdk.vectorstore("claims/x").query("r", top_k=1, threshold=0.7, filters={"category": "sinistros"})
    assert rec.body(1) == {"query_text": "r", "top_k": 1, "threshold": 0.7, "filters": {"category": "sinistros"}}

    up = sdk.vectorstore("claims").upsert(
        documents=[Document(id="a", text="t", metadata={"k": 1}), {"id": "b", "vector": [0.1, 0.2]}]
    )
    assert up.upserted == 2
    assert rec.body(2) == {"documents": [{"id": "a", "metadata": {"k": 1}, "text": "t"}, {"id": "b", "vector": [0.1, 0.2]}]}

    g = sdk.graph("pipeline_fraude")
    d = g.deploy("name: x\nnodes: []\n")
    assert rec.body(3) == {"name": "pipeline_fraude", "definition": "name: x\nnodes: []\n", "format": "yaml"}
    assert (d.graph_id, d.version, d.success) == ("graph_1", "1.0.0", True) and g.graph_id == "graph_1"
    g.deploy({"nodes": []})
    assert rec.body(4)["format"] == "json" and json.loads(rec.body(4)["definition"]) == {"nodes": []}
    res = g.run(inputs={"claim_text": "roubo"})
    assert rec.body(5) == {"inputs": {"claim_text": "roubo"}, "stream": False}
    assert res.status == "completed" and res.outputs == {"answer": "ok"} and res.usage.cost_usd == Decimal("0.5")

    m = sdk.metrics(project_id="fraude-claims", start_time="2025-07-25T00:00:00Z")
    assert dict(rec.requests[6].url.params) == {"project_id": "fraude-claims", "start_time": "2025-07-25T00:00:00Z"}
    assert m.get("llm_requests_total", model="m")[0].value == 3

    h = sdk.health()  # 503 with the health body: returned, not raised
    assert h.http_status == 503 and h.status == "unhealthy" and not h.ok
    assert h.checks == {"database": "unhealthy"}


# ----- SSE ---------------------------------------------------------------------------------

STREAM = (
    b'data: {"delta": "Para", "finished": false}\n\n'
    b": keep-alive\n\n"
    b'data: {"delta": " casos", "finished": false}\r\n\r\n'
    b'data: {"delta": " de \xc3\xa9", "finished": false}\r\r'
    b'data: {"delta": "", "finished": true, "usage": {"prompt_tokens": 2, "completion_tokens": 3, '
    b'"total_tokens": 5, "cost_usd": 0.0000015}}\n\n'
)


def test_sse_decoder_gives_the_same_events_for_every_chunking():
    whole = [e.data for e in iter_events([STREAM])]
    assert len(whole) == 4
    assert json.loads(whole[2])["delta"] == " de é"
    for size in (1, 2, 3, 7, 13):
        chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
        assert [e.data for e in iter_events(chunks)] == whole, size
    # every two-way split, including inside \r\n and inside the UTF-8 é
    for cut in range(len(STREAM)):
        assert [e.data for e in iter_events([STREAM[:cut], STREAM[cut:]])] == whole, cut


def test_sse_decoder_fields_multiline_data_bom_and_unterminated_last_event():
    evs = list(iter_events([b"\xef\xbb\xbfevent: x\nid: 7\ndata: a\ndata:b\n\nretry: 5\ndata: last"]))
    assert [(e.event, e.id, e.data) for e in evs] == [("x", "7", "a\nb"), (None, "7", "last")]


def test_sse_decoder_yields_an_event_as_soon_as_its_blank_line_arrives():
    dec = SSEDecoder()
    assert list(dec.feed(b'data: {"delta": "a"')) == []
    assert list(dec.feed(b"}\n")) == []
    assert [e.data for e in dec.feed(b"\n")] == ['{"delta": "a"}']


def sse_response(chunks, log=None):
    def gen():
        for c in chunks:
            if log is not None:
                log.append(("sent", c))
            yield c

    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=gen())


def test_stream_yields_deltas_incrementally_and_keeps_usage():
    log: list = []
    parts = [STREAM[i : i + 40] for i in range(0, len(STREAM), 40)]
    rec = Recorder(lambda req: sse_response(parts, log))
    sdk = sdk_with(rec)
    s = sdk.llm("gpt-4o-mini").stream(messages=[{"role": "user", "content": "oi"}], max_tokens=5)
    assert rec.body(0) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "oi"}],
        "parameters": {"max_tokens": 5},
        "stream": True,
    }
    assert rec.requests[0].url.path == "/api/v1/llm/stream"
    assert rec.requests[0].headers["accept"] == "text/event-stream"
    got = []
    for delta in s:
        got.append(delta)
        log.append(("got", delta))
    assert got == ["Para", " casos", " de é"]
    # "Para" reached the caller before the chunks after its event were read
    first_got = log.index(("got", "Para"))
    assert sum(1 for x in log[:first_got] if x[0] == "sent") <= 2
    assert s.content == "Para casos de é" and s.finished
    assert s.usage.total_tokens == 5 and s.usage.cost_usd == Decimal("0.0000015")


def test_stream_error_in_the_last_event_raises_a_typed_error_with_the_partial_text():
    body = (
        b'data: {"delta": "Para", "finished": false}\n\n'
        b'data: {"delta": "", "finished": true, "error": {"error": "upstream_error", '
        b'"message": "o provedor caiu", "details": [{"code": "UPSTREAM_DISCONNECTED", "message": "x"}]}}\n\n'
    )
    rec = Recorder(lambda req: sse_response([body]))
    s = sdk_with(rec).llm("gpt-4o-mini").stream("oi")
    seen = []
    with pytest.raises(StreamError) as ei:
        for d in s:
            seen.append(d)
    assert seen == ["Para"]
    e = ei.value
    assert e.partial == "Para" and e.error == "upstream_error" and e.message == "o provedor caiu"
    assert e.codes == ["UPSTREAM_DISCONNECTED"]
    # a flat error event (error as a string) maps too
    flat = b'data: {"delta": "", "finished": true, "error": "upstream_error", "message": "caiu"}\n\n'
    rec = Recorder(lambda req: sse_response([flat]))
    with pytest.raises(StreamError) as ei:
        sdk_with(rec).llm("gpt-4o-mini").stream("oi").text()
    assert (ei.value.error, ei.value.message) == ("upstream_error", "caiu")
    # catraca's shape: {"code", "message"}
    coded = b'data: {"delta": "", "finished": true, "error": {"code": "STREAM_INTERRUPTED", "message": "o provedor caiu"}}\n\n'
    rec = Recorder(lambda req: sse_response([coded]))
    with pytest.raises(StreamError) as ei:
        sdk_with(rec).llm("gpt-4o-mini").stream("oi").text()
    e = ei.value
    assert (e.error, e.message, e.codes) == ("stream_interrupted", "o provedor caiu", ["STREAM_INTERRUPTED"])
    # an error that is a sentence is the message
    told = b'data: {"finished": true, "status": "failed", "error": "the gateway answered 502: down"}\n\n'
    rec = Recorder(lambda req: sse_response([told]))
    with pytest.raises(StreamError) as ei:
        sdk_with(rec).llm("gpt-4o-mini").stream("oi").text()
    assert (ei.value.error, ei.value.message) == ("stream_error", "the gateway answered 502: down")


def test_stream_cut_before_the_last_event_raises():
    rec = Recorder(lambda req: sse_response([b'data: {"delta": "Pa", "finished": false}\n\n']))
    s = sdk_with(rec).llm("gpt-4o-mini").stream("oi")
    with pytest.raises(StreamError) as ei:
        s.text()
    assert ei.value.error == "stream_incomplete" and ei.value.partial == "Pa"


def test_stream_http_error_raises_before_iteration():
    rec = Recorder(httpx.Response(403, json=err_body("insufficient_scope", "sem escopo", "SCOPE_REQUIRED")))
    with pytest.raises(PermissionDeniedError):
        sdk_with(rec).llm("gpt-4o-mini").stream("oi")


def test_graph_stream_events_and_final_outputs():
    body = b"".join(
        b"data: " + json.dumps(e).encode() + b"\n\n"
        for e in [
            {"node": "a", "status": "running", "finished": False},
            {"node": "a", "status": "completed", "output": "x", "finished": False},
            {"finished": True, "outputs": {"a": "x"}, "usage": {"total_tokens": 1}},
        ]
    )
    rec = Recorder(lambda req: sse_response([body]))
    gs = sdk_with(rec).graph("g").run(inputs={"q": 1}, stream=True)
    assert rec.body(0) == {"inputs": {"q": 1}, "stream": True}
    evs = list(gs)
    assert [(e.node, e.status, e.finished) for e in evs] == [("a", "running", False), ("a", "completed", False), (None, None, True)]
    assert gs.outputs == {"a": "x"} and gs.usage.total_tokens == 1
    bad = b'data: {"node": "a", "status": "failed", "finished": true, "error": "node_failed", "message": "a quebrou"}\n\n'
    rec = Recorder(lambda req: sse_response([bad]))
    with pytest.raises(StreamError, match="a quebrou"):
        list(sdk_with(rec).graph("g").run(stream=True))


# ----- tokens ------------------------------------------------------------------------------

EXPIRED_401 = httpx.Response(401, json=err_body("authentication_failed", "Token JWT inválido ou expirado", "TOKEN_EXPIRED"))


def test_401_refreshes_once_and_retries_with_the_new_token():
    rec = Recorder(EXPIRED_401, token_answer("tok-2", "ref-2"), LLM_OK)
    sdk = sdk_with(rec, token="tok-1", refresh_token="ref-1")
    r = sdk.llm("gpt-4o-mini").invoke("oi")
    assert r.content == "Para casos de roubo"
    assert rec.paths() == ["/api/v1/llm/invoke", "/api/v1/auth/refresh", "/api/v1/llm/invoke"]
    assert rec.body(1) == {"refresh_token": "ref-1"}
    assert "authorization" not in rec.requests[1].headers
    assert rec.requests[0].headers["authorization"] == "Bearer tok-1"
    assert rec.requests[2].headers["authorization"] == "Bearer tok-2"
    assert sdk.token == "tok-2" and sdk._creds.refresh == "ref-2"  # the rotated refresh token is kept


def test_a_second_401_is_raised_not_looped():
    rec = Recorder(EXPIRED_401, token_answer("tok-2", "ref-2"), EXPIRED_401)
    sdk = sdk_with(rec, token="tok-1", refresh_token="ref-1")
    with pytest.raises(AuthenticationError) as ei:
        sdk.llm("gpt-4o-mini").invoke("oi")
    assert ei.value.codes == ["TOKEN_EXPIRED"]
    assert len(rec.requests) == 3


def test_token_close_to_expiry_is_refreshed_before_the_request():
    rec = Recorder(token_answer("tok-2", "ref-2"), LLM_OK)
    sdk = sdk_with(rec, token=jwt(time.time() + 5), refresh_token="ref-1")  # within the 30 s margin
    sdk.llm("gpt-4o-mini").invoke("oi")
    assert rec.paths() == ["/api/v1/auth/refresh", "/api/v1/llm/invoke"]
    assert rec.requests[1].headers["authorization"] == "Bearer tok-2"
    # a fresh token is used as is
    rec = Recorder(LLM_OK)
    far = jwt(time.time() + 900)
    sdk_with(rec, token=far, refresh_token="ref-1").llm("gpt-4o-mini").invoke("oi")
    assert rec.paths() == ["/api/v1/llm/invoke"]


def test_api_key_logs_in_lazily_and_renews_by_expires_in():
    rec = Recorder(token_answer("tok-a", "ref-a", expires_in=900), LLM_OK)
    sdk = Full(
        base_url=BASE, project_id="fraude-claims", api_key="bx_live_abc", scopes=["invoke_llm"],
        transport=httpx.MockTransport(rec),
    )
    assert rec.requests == []
    sdk.llm("gpt-4o-mini").invoke("oi")
    assert rec.paths() == ["/api/v1/auth/token", "/api/v1/llm/invoke"]
    assert rec.body(0) == {"project_id": "fraude-claims", "api_key": "bx_live_abc", "scopes": ["invoke_llm"]}
    assert sdk.scopes == ["invoke_llm"]
    # the clock moves past expires_in - margin: the refresh token renews before the next call
    sdk._creds.expires_at = time.time() + 10
    rec.answers = [token_answer("tok-b", "ref-b"), LLM_OK]
    sdk.llm("gpt-4o-mini").invoke("oi")
    assert rec.paths()[2:] == ["/api/v1/auth/refresh", "/api/v1/llm/invoke"]
    assert rec.body(2) == {"refresh_token": "ref-a"}
    assert rec.requests[3].headers["authorization"] == "Bearer tok-b"


def test_a_refused_refresh_falls_back_to_the_api_key():
    refused = httpx.Response(401, json=err_body("authentication_failed", "reused", "REFRESH_TOKEN_REUSED"))
    rec = Recorder(token_answer("tok-a", "ref-a"), EXPIRED_401, refused, token_answer("tok-c", "ref-c"), LLM_OK)
    sdk = Full(base_url=BASE, project_id="p", api_key="bx_live_k", transport=httpx.MockTransport(rec))
    sdk.llm("gpt-4o-mini").invoke("oi")
    assert rec.paths() == [
        "/api/v1/auth/token", "/api/v1/llm/invoke", "/api/v1/auth/refresh", "/api/v1/auth/token", "/api/v1/llm/invoke",
    ]
    assert "scopes" not in rec.body(0)  # none asked: every scope the key holds
    assert rec.requests[4].headers["authorization"] == "Bearer tok-c"


def test_concurrent_401s_refresh_once():
    lock = threading.Lock()
    counts = {"refresh": 0}

    def handler(req):
        if req.url.path.endswith("/auth/refresh"):
            with lock:
                counts["refresh"] += 1
            time.sleep(0.05)
            return token_answer("tok-2", "ref-2")
        if req.headers["authorization"] == "Bearer tok-1":
            return EXPIRED_401
        return LLM_OK

    sdk = Full(token="tok-1", refresh_token="ref-1", base_url=BASE, transport=httpx.MockTransport(handler))
    errs = []

    def call():
        try:
            sdk.llm("gpt-4o-mini").invoke("oi")
        except Exception as e:  # pragma: no cover - reported below
            errs.append(e)

    ts = [threading.Thread(target=call) for _ in range(6)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert errs == [] and counts["refresh"] == 1


def test_a_token_alone_cannot_renew_and_says_so():
    rec = Recorder(EXPIRED_401)
    with pytest.raises(AuthenticationError):
        sdk_with(rec, token="tok-1").llm("gpt-4o-mini").invoke("oi")
    assert len(rec.requests) == 1


# ----- Student -----------------------------------------------------------------------------


def test_student_refuses_models_outside_the_allow_list_before_any_request():
    rec = Recorder(LLM_OK)
    sdk = sdk_with(rec, cls=Student, models=["gpt-4o-mini"])
    with pytest.raises(StudentLimitError) as ei:
        sdk.llm("gpt-4o").invoke("oi")
    assert isinstance(ei.value, PermissionDeniedError) and ei.value.client_side and ei.value.status is None
    with pytest.raises(StudentLimitError):
        sdk.llm("gpt-4o").stream("oi")
    assert rec.requests == []
    assert sdk.llm("gpt-4o-mini").invoke("oi").content
    assert len(rec.requests) == 1


def test_student_cannot_deploy_graphs_but_runs_them():
    rec = Recorder(httpx.Response(200, json={"execution_id": "e", "graph_id": "g", "version": "1", "status": "completed", "outputs": {}}))
    sdk = sdk_with(rec, cls=Student)
    with pytest.raises(StudentLimitError, match="deploy"):
        sdk.graph("g").deploy("nodes: []")
    assert rec.requests == []
    assert sdk.graph("g").run(inputs={}).status == "completed"


def test_student_caps_requests_per_minute_client_side():
    rec = Recorder(LLM_OK)
    sdk = sdk_with(rec, cls=Student, rpm=3)
    for _ in range(3):
        sdk.llm("gpt-4o-mini").invoke("oi")
    with pytest.raises(RateLimitError) as ei:
        sdk.llm("gpt-4o-mini").invoke("oi")
    e = ei.value
    assert e.client_side and e.status is None and e.limit == 3 and e.window == 60
    assert 0 < e.retry_after <= 60
    assert len(rec.requests) == 3  # the fourth never left
    # the window slides: requests older than 60 s no longer count
    sdk._sent[0] -= 61
    sdk.llm("gpt-4o-mini").invoke("oi")
    assert len(rec.requests) == 4


def test_student_defaults_and_full_has_no_client_limits():
    s = Student(token="t", base_url=BASE)
    assert s.rpm == Student.STUDENT_RPM and s.models == frozenset(Student.STUDENT_MODELS)
    rec = Recorder(LLM_OK)
    sdk = sdk_with(rec)
    for _ in range(Student.STUDENT_RPM + 2):
        sdk.llm("any-model").invoke("oi")
    assert len(rec.requests) == Student.STUDENT_RPM + 2
