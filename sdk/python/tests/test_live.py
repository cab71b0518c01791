"""Live tests: the SDK driving a running broker (catraca's tests/bradax_sdk.rs starts one with
the mock upstream and makes the projects and keys; see conftest.py for the environment).

Each test names the contract operation it drives; together they cover invoke, stream (also
incremental and a mid-stream failure), vectors, graphs, metrics, health, typed errors, the
student tier on both sides and token renewal.
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import pytest

from bradax import (
    AuthenticationError,
    Document,
    Full,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamError,
    Student,
    StudentLimitError,
    ValidationError,
)

MSGS = [
    {"role": "system", "content": "Você é um perito em sinistros de seguros."},
    {"role": "user", "content": "Meu carro foi roubado, o que devo fazer?"},
]


@pytest.fixture(scope="module")
def full(live_env):
    sdk = Full(
        project_id=live_env["BRADAX_PROJECT_ID"],
        api_key=live_env["BRADAX_API_KEY"],
        base_url=live_env["BRADAX_BASE_URL"],
    )
    yield sdk
    sdk.close()


# ----- health, auth --------------------------------------------------------------------------


def test_health(full):
    h = full.health()
    assert h.http_status == 200 and h.ok, h
    assert h.status in ("healthy", "degraded")
    assert "database" in h.checks, h.checks
    assert h.timestamp


def test_token_from_auth_token_drives_the_contract_example(live_env, full):
    info = full.authenticate()
    assert info.expires_in == 900 and info.token_type == "Bearer"
    assert "invoke_llm" in info.scopes and info.refresh_token
    # the contract's SDK section: Full(token=...)
    sdk = Full(token=info.access_token, base_url=live_env["BRADAX_BASE_URL"])
    r = sdk.llm(model=live_env["BRADAX_MODEL"]).invoke(messages=MSGS)
    assert r.content


# ----- LLM -----------------------------------------------------------------------------------


def test_invoke_returns_content_model_and_exact_usage(live_env, full):
    r = full.llm(model=live_env["BRADAX_MODEL"]).invoke(messages=MSGS, temperature=0.7, max_tokens=100)
    assert r.content
    assert r.model == live_env["BRADAX_MODEL"]
    u = r.usage
    assert u.prompt_tokens > 0 and u.completion_tokens > 0
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert isinstance(u.cost_usd, Decimal) and u.cost_usd > 0
    assert r.timestamp


def test_stream_yields_deltas_then_usage(live_env, full):
    s = full.llm(model=live_env["BRADAX_MODEL"]).stream(messages=MSGS, headers={"x-mock-chunks": "5"})
    deltas = list(s)
    assert len(deltas) >= 2, deltas
    assert s.finished and s.content == "".join(deltas)
    assert s.usage is not None and s.usage.total_tokens > 0
    assert isinstance(s.usage.cost_usd, Decimal) and s.usage.cost_usd > 0


def test_stream_is_incremental(live_env, full):
    # 3 chunks 400 ms apart: the first delta arrives long before the last event
    t0 = time.monotonic()
    s = full.llm(model=live_env["BRADAX_MODEL"]).stream(
        "oi", headers={"x-mock-chunks": "3", "x-mock-chunk-delay-ms": "400"}
    )
    times = [time.monotonic() - t0 for _ in s]
    end = time.monotonic() - t0
    assert len(times) >= 2
    assert end - times[0] >= 0.6, (times, end)


def test_stream_failure_after_the_first_byte_is_a_stream_error(live_env, full):
    s = full.llm(model=live_env["BRADAX_MODEL"]).stream(
        "oi",
        headers={"x-mock-chunks": "6", "x-mock-fail-after-chunks": "3", "x-mock-chunk-delay-ms": "50"},
    )
    got = []
    with pytest.raises(StreamError) as ei:
        for d in s:
            got.append(d)
    e = ei.value
    assert got and e.partial == "".join(got)
    assert e.error and e.message


# ----- typed errors --------------------------------------------------------------------------


def test_typed_errors_carry_the_contract_fields(live_env, full):
    base = live_env["BRADAX_BASE_URL"]
    # a wrong key: 401
    bad = Full(project_id=live_env["BRADAX_PROJECT_ID"], api_key="bx_live_" + "0" * 48, base_url=base)
    with pytest.raises(AuthenticationError) as ei:
        bad.llm(live_env["BRADAX_MODEL"]).invoke("oi")
    e = ei.value
    assert e.status == 401 and e.error == "authentication_failed" and e.message
    assert e.details and e.details[0].code and e.request_id and e.timestamp
    # a token the broker cannot verify, with nothing to renew it: 401
    with pytest.raises(AuthenticationError) as ei:
        Full(token="not-a-jwt", base_url=base).vectorstore("claims").query("roubo")
    assert ei.value.status == 401
    # asking for a scope the key does not hold: 403
    narrow = Full(
        project_id=live_env["BRADAX_PROJECT_ID"], api_key=live_env["BRADAX_NARROW_API_KEY"],
        scopes=["read_vector"], base_url=base,
    )
    with pytest.raises(PermissionDeniedError) as ei:
        narrow.authenticate()
    assert ei.value.status == 403
    # a token without the scope: 403 with the scope's code
    narrow = Full(project_id=live_env["BRADAX_PROJECT_ID"], api_key=live_env["BRADAX_NARROW_API_KEY"], base_url=base)
    assert narrow.llm(live_env["BRADAX_MODEL"]).invoke("oi").content  # invoke_llm it holds
    with pytest.raises(PermissionDeniedError) as ei:
        narrow.vectorstore("claims").query("roubo")
    e = ei.value
    assert e.status == 403 and e.error == "insufficient_scope" and e.request_id, e
    # an unknown parameter: 400
    with pytest.raises(ValidationError) as ei:
        full.llm(live_env["BRADAX_MODEL"]).invoke("oi", no_such_parameter=1)
    assert ei.value.status == 400 and ei.value.details, ei.value
    # an unknown collection: 404
    with pytest.raises(NotFoundError) as ei:
        full.vectorstore(f"nope-{uuid.uuid4().hex[:8]}").query("roubo")
    assert ei.value.status == 404


# ----- vectors -------------------------------------------------------------------------------


def test_vectors_upsert_then_query_by_meaning_threshold_and_filters(full):
    vs = full.vectorstore(f"claims-{uuid.uuid4().hex[:8]}")
    r = vs.upsert(
        documents=[
            Document(id="roubo", text="roubo de veículo carro roubado na rua", metadata={"category": "sinistros", "title": "Roubo"}),
            Document(id="enchente", text="enchente alagamento da casa pela chuva", metadata={"category": "sinistros"}),
            {"id": "bolo", "text": "receita de bolo de chocolate com farinha", "metadata": {"category": "outros"}},
        ]
    )
    assert r.upserted == 3 and r.timestamp
    # (the mock's embeddings are a bag of words hashed into 8 slots: a query with a document's
    # own words finds it first, with cosine 1)
    res = vs.query("roubo de veículo carro roubado na rua", top_k=2)
    assert len(res) == 2
    assert res[0].id == "roubo", [(m.id, m.score) for m in res]
    assert res[0].score > 0.999 and res[1].score < res[0].score
    assert res[0].metadata == {"category": "sinistros", "title": "Roubo"}
    assert res[0].text == "roubo de veículo carro roubado na rua"
    # threshold: the minimum cosine
    only = vs.query("roubo de veículo carro roubado na rua", top_k=5, threshold=(res[0].score + res[1].score) / 2)
    assert [m.id for m in only] == ["roubo"]
    # filters match metadata exactly
    res = vs.query("roubo de veículo", top_k=5, filters={"category": "outros"})
    assert [m.id for m in res] == ["bolo"]
    # a vector of another dimension: 400, nothing stored
    with pytest.raises(ValidationError):
        vs.upsert(documents=[{"id": "x", "vector": [0.1, 0.2, 0.3], "text": "x"}, {"id": "y", "text": "novo"}])
    assert {m.id for m in vs.query("novo", top_k=10)} == {"roubo", "enchente", "bolo"}


# ----- graphs --------------------------------------------------------------------------------

GRAPH = """\
name: pipeline_fraude
nodes:
  - id: resumo
    type: template
    template: "Sinistro: {{inputs.claim_text}}"
  - id: analise
    type: llm
    model: MODEL
    prompt: "Classifique o risco de fraude: {{resumo.output}}"
"""


def test_graph_deploy_run_and_stream(live_env, full):
    name = f"pipeline_fraude_{uuid.uuid4().hex[:8]}"
    g = full.graph(name)
    d = g.deploy(GRAPH.replace("MODEL", live_env["BRADAX_MODEL"]), format="yaml")
    assert d.success and d.graph_id and d.version
    # the same definition again: same id and version
    again = full.graph(name).deploy(GRAPH.replace("MODEL", live_env["BRADAX_MODEL"]))
    assert (again.graph_id, again.version) == (d.graph_id, d.version)

    res = g.run(inputs={"claim_text": "Meu carro foi roubado ontem", "policy_number": "POL123456"})
    assert res.execution_id and res.graph_id == d.graph_id and res.version == d.version
    assert res.status in ("completed", "succeeded", "success"), res
    assert "resumo" in res.outputs and "analise" in res.outputs, res.outputs
    assert "Meu carro foi roubado ontem" in str(res.outputs["resumo"])
    assert res.usage is not None and res.usage.total_tokens > 0

    # by graph_id too, streamed: one event per node step, then the outputs
    gs = full.graph(d.graph_id).run(inputs={"claim_text": "furto"}, stream=True)
    events = list(gs)
    nodes = {e.node for e in events if e.node}
    assert {"resumo", "analise"} <= nodes, events
    assert events[-1].finished and gs.outputs is not None and "analise" in gs.outputs

    # problems are reported in details; unknown graphs are 404
    with pytest.raises(ValidationError) as ei:
        full.graph(name + "_bad").deploy(
            "nodes:\n  - id: a\n    type: template\n    template: '{{b.output}}'\n"
            "  - id: b\n    type: template\n    template: '{{a.output}}'\n"
        )
    assert ei.value.status == 400 and ei.value.details, ei.value
    with pytest.raises(NotFoundError):
        full.graph(f"missing_{uuid.uuid4().hex[:8]}").run(inputs={})


# ----- metrics -------------------------------------------------------------------------------


def test_metrics_reflect_real_usage_and_other_projects_are_403(live_env, full):
    full.llm(model=live_env["BRADAX_MODEL"]).invoke("oi")
    deadline = time.monotonic() + 15
    while True:
        m = full.metrics()
        reqs = [x for x in m if x.name == "llm_requests_total" and x.labels.get("model") == live_env["BRADAX_MODEL"]]
        if reqs and reqs[0].value >= 1:
            break
        assert time.monotonic() < deadline, m.raw
        time.sleep(0.3)
    assert reqs[0].labels.get("project") == live_env["BRADAX_PROJECT_ID"]
    with pytest.raises(PermissionDeniedError) as ei:
        full.metrics(project_id=live_env["BRADAX_STUDENT_PROJECT_ID"])
    assert ei.value.status == 403


# ----- Student -------------------------------------------------------------------------------


def test_student_limits_client_side_and_server_side(live_env):
    base = live_env["BRADAX_BASE_URL"]
    pid = live_env["BRADAX_STUDENT_PROJECT_ID"]
    student = Student(project_id=pid, api_key=live_env["BRADAX_STUDENT_API_KEY"], base_url=base, rpm=3)
    # the model allow-list and no deploy: refused before any request
    with pytest.raises(StudentLimitError) as ei:
        student.llm(live_env["BRADAX_FULL_ONLY_MODEL"]).invoke("oi")
    assert ei.value.client_side and ei.value.status is None
    with pytest.raises(StudentLimitError):
        student.graph("g").deploy("nodes: []\n")
    assert student.token is None  # nothing was sent, not even auth/token
    # allowed calls go through, up to the client-side rpm
    for _ in range(3):
        assert student.llm(live_env["BRADAX_MODEL"]).invoke("oi").content
    with pytest.raises(RateLimitError) as ei:
        student.llm(live_env["BRADAX_MODEL"]).invoke("oi")
    assert ei.value.client_side and ei.value.window == 60

    # the broker enforces the same limits for a client that does not
    unguarded = Full(project_id=pid, api_key=live_env["BRADAX_STUDENT_API_KEY"], base_url=base)
    with pytest.raises(PermissionDeniedError) as ei:
        unguarded.llm(live_env["BRADAX_FULL_ONLY_MODEL"]).invoke("oi")
    assert ei.value.status == 403 and not ei.value.client_side
    with pytest.raises(PermissionDeniedError) as ei:
        unguarded.graph(f"g_{uuid.uuid4().hex[:6]}").deploy("nodes: []\n")
    assert ei.value.status == 403

    # a key of small rpm: within two windows' worth of calls the broker answers 429
    rpm = int(live_env["BRADAX_STUDENT_RPM"])
    limited = Full(project_id=pid, api_key=live_env["BRADAX_STUDENT_LIMITED_API_KEY"], base_url=base)
    with pytest.raises(RateLimitError) as ei:
        for _ in range(2 * rpm + 1):
            limited.llm(live_env["BRADAX_MODEL"]).invoke("oi")
    e = ei.value
    assert e.status == 429 and not e.client_side
    assert e.error == "rate_limit_exceeded" and e.window == 60 and e.retry_after is not None, e


# ----- token renewal -------------------------------------------------------------------------


def test_token_refresh_before_expiry_and_after_a_401(live_env):
    sdk = Full(
        project_id=live_env["BRADAX_PROJECT_ID"], api_key=live_env["BRADAX_API_KEY"],
        base_url=live_env["BRADAX_BASE_URL"],
    )
    first = sdk.authenticate()
    # close to expiry: renewed through auth/refresh before the call (the refresh token rotates)
    sdk._creds.expires_at = time.time() + 5
    assert sdk.llm(live_env["BRADAX_MODEL"]).invoke("oi").content
    assert sdk.token != first.access_token
    second_refresh = sdk._creds.refresh
    assert second_refresh and second_refresh != first.refresh_token
    # an access token the broker refuses: one renewal, the call retried and answered
    sdk._creds.access = "expired.or.invalid"
    sdk._creds.expires_at = time.time() + 900
    assert sdk.llm(live_env["BRADAX_MODEL"]).invoke("oi").content
    assert sdk.token not in ("expired.or.invalid", first.access_token)
    assert sdk._creds.refresh not in (first.refresh_token, second_refresh)
    # a token-only client cannot renew: the 401 is raised
    lone = Full(token="expired.or.invalid", base_url=live_env["BRADAX_BASE_URL"])
    with pytest.raises(AuthenticationError):
        lone.llm(live_env["BRADAX_MODEL"]).invoke("oi")
