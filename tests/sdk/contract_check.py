"""Schemathesis over one contract of a live catraca (run by tests/contract.rs).

    python contract_check.py maxai|sabia|tokia

Environment: CATRACA_CONTRACT, a JSON object with `base_url` (the gateway, which serves the
admin app's paths too), `dir` (scratch directory), `seed`, `max_examples`, and per part:

- maxai: `schema` (path of the MaxAI seed), `token` (a customer's access token), `refresh` (a
  refresh token of another session of the same customer), `key` (a `maxai-...` key),
  `key_id` (a key of the customer the DELETE route may revoke), `template_id` (a built-in
  template).
- sabia: `token` (a user's JWT), `team_id`, `key_id` (a key of that team), `member_id` (a second
  member of that team).
- tokia: `schema` (path of the Tokia seed, kept in the repo), `key` (an `sk-tokia-` key of a
  funded organization), `webhook_id`, `attempt_id`, `session_id`, `prompt_id` (of that
  organization).
- pytake: `token` (an org_admin's access token), `flow_id`, `secret_id` (of that
  organization); the schema is catraca's `/api/v1/openapi.json` (PyTake and bradax).
- bradax: `token` (a bradax access token of a key with every scope), `project_id` (its
  project), `collection` (one of its vector collections); the schema is the bradax operations
  of `/api/v1/openapi.json`.

The schema of each part is written to `dir`, with a `schemathesis.toml`; then schemathesis's own
CLI runs in this process (so the hooks below apply) and prints its report. Checks:
`not_a_server_error`, `status_code_conformance`, `response_schema_conformance`. Exit status 1 on
any failure but those listed in `known` (see the end of this file).
"""
import json
import os
import sys
import urllib.request

import schemathesis
from schemathesis.cli import schemathesis as st_cli

CFG = json.loads(os.environ["CATRACA_CONTRACT"])
PART = sys.argv[1]
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"

# A webhook's URL is resolved (DNS) when the webhook is created, and a delivery would call it:
# every generated URL is replaced by one on this machine where nothing listens (the test's
# gateway runs with webhooks.allow_loopback), so no request or lookup ever leaves the machine.
SAFE_WEBHOOK_URL = "http://127.0.0.1:9/catraca-contract-hook"


def maxai_schema():
    """The MaxAI seed as written, plus the error statuses its conventions imply.

    The seed documents only the success status of most operations (and 400 on register, 401 on
    login, 400 on the template routes). Its one error shape is `Error` ({"error", "details"}).
    Generated input is meant to be refused, so each /api/ operation also documents, with the
    `Error` schema: 400 (malformed input), 401 (operations with `security`: no or a bad token),
    404 (operations that name a resource by a path id), and 429 on login (failed logins are
    throttled; the seed's info announces rate limits). Statuses the seed already lists without a
    body get the `Error` schema too. Any other status (403, 405, 409, 415, 422, 5xx) stays
    undocumented and fails `status_code_conformance`.

    /v1/* is the gateway's OpenAI-compatible surface: its errors are OpenAI's
    {"error": {"message", "type", "param", "code"}} (README, Errors), which the seed does not
    describe; the statuses the gateway gives generated input are documented without a schema:
    400 (malformed body or model), 401 (no or a bad key), 404 (unknown model), 415 (a body that
    is not JSON).
    """
    with open(CFG["schema"]) as f:
        doc = json.load(f)
    err = {"$ref": "#/components/schemas/Error"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            responses = op.setdefault("responses", {})
            if path.startswith("/v1/"):
                wanted = [("400", "Invalid request"), ("404", "Unknown model")]
                if op.get("security"):
                    wanted.append(("401", "Missing or invalid API key"))
                if "requestBody" in op:
                    wanted.append(("415", "Not a JSON body"))
                for status, what in wanted:
                    responses.setdefault(status, {"description": what})
                continue
            wanted = ["400"]
            if op.get("security"):
                wanted.append("401")
            if "{" in path:
                wanted.append("404")
            if path == "/api/auth/login":
                wanted.append("429")  # failed logins are throttled (info: "Rate limits")
            for status in wanted:
                responses.setdefault(status, {"description": "Error"})
            for status, r in responses.items():
                if status.startswith("4") and "content" not in r:
                    r["content"] = {"application/json": {"schema": err}}
    return doc


def sabia_schema():
    """catraca's own /openapi.json, only its SabIA operations (SabIA's seed is markdown)."""
    with urllib.request.urlopen(CFG["base_url"] + "/openapi.json") as r:
        doc = json.load(r)
    paths = {}
    for path, ops in doc["paths"].items():
        mine = {m: op for m, op in ops.items() if "sabia" in op.get("tags", [])}
        if mine:
            paths[path] = mine
    doc["paths"] = paths
    return doc


# Tokia's AI routes and /models are the gateway's, not the admin app's: the statuses the gateway
# gives generated input, documented with the seed's own `Error` schema (its errors are that
# shape: {"error": {"message", "type", "code"}}).
TOKIA_GATEWAY = {
    "/chat/completions": ["400", "401", "402", "404", "413", "415", "429"],
    "/embeddings": ["400", "401", "402", "404", "413", "415", "429"],
    "/images/generations": ["400", "401", "402", "404", "413", "415", "429"],
    "/audio/transcriptions": ["400", "401", "402", "404", "413", "415", "429"],
    "/models": ["400", "401"],
    "/usage/rate-limit": ["400", "401"],
}


def tokia_schema():
    """The Tokia seed as written, plus what it leaves out, each addition named here.

    1. Error statuses. The seed documents few (401/402 on chat, 404 on a session and a prompt).
       Every status catraca documents for the same operation in its own /openapi.json
       (`tokia_error_statuses` in src/admin/openapi.rs: 400 bad parameters or body, 401 no or a
       bad key, 403, 404 another organization's or an unknown id, 409, 429, 503) is added with
       catraca's schema for it, which is the seed's `Error` shape; the gateway's routes get
       `TOKIA_GATEWAY` with the seed's `Error`.
    2. Success answers the seed names without a schema (`me/profile`, `usage/by-key`, the
       prompt routes, ...) or without any response (`me/teams`, `me/alerts`, `me/refunds`) take
       catraca's documented schema and status (the README's shapes), so they are checked too;
       where the seed gives a schema, the seed's is kept and checked.
    3. `Model.category` gains `embedding` and `audio`: the issue's decision lists those models
       under their own `?category=` filter, which the seed's own parameter enum offers.
    4. Chat answers `text/event-stream` when the body asks `stream: true` (the seed's field).
    """
    import yaml

    with open(CFG["schema"]) as f:
        doc = yaml.safe_load(f)
    with urllib.request.urlopen(CFG["base_url"] + "/openapi.json") as r:
        own = json.load(r)
    err = {"$ref": "#/components/schemas/Error"}
    model = doc["components"]["schemas"]["Model"]["properties"]["category"]
    model["enum"] = model["enum"] + ["embedding", "audio"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            responses = op.get("responses") or {}
            op["responses"] = responses
            if path in TOKIA_GATEWAY:
                for status in TOKIA_GATEWAY[path]:
                    r = responses.setdefault(status, {"description": "Error"})
                    r.setdefault("content", {"application/json": {"schema": err}})
                if path == "/chat/completions":
                    # schemathesis checks each event: `data` is one chunk's JSON text
                    responses["200"]["content"]["text/event-stream"] = {"schema": {
                        "type": "object", "required": ["data"],
                        "properties": {"data": {"type": "string"}}}}
                continue
            mine = own["paths"].get("/v1" + path, {}).get(method)
            assert mine is not None, f"{method.upper()} /v1{path} is not in catraca's /openapi.json"
            for status, r in mine.get("responses", {}).items():
                seed = responses.get(status)
                if seed is None:
                    responses[status] = r
                elif "content" not in seed and "content" in r:
                    seed["content"] = r["content"]
    # catraca's schemas may name its own components
    for name, schema in own.get("components", {}).get("schemas", {}).items():
        doc["components"]["schemas"].setdefault(name, schema)
    return doc


def pytake_schema():
    """catraca's `/api/v1/openapi.json`: every PyTake and bradax operation mounted."""
    with urllib.request.urlopen(CFG["base_url"] + "/api/v1/openapi.json") as r:
        return json.load(r)


def bradax_schema():
    """The bradax operations of `/api/v1/openapi.json`."""
    doc = pytake_schema()
    paths = {}
    for path, ops in doc["paths"].items():
        mine = {m: op for m, op in ops.items() if "bradax" in op.get("tags", [])}
        if mine:
            paths[path] = mine
    doc["paths"] = paths
    return doc


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def config(auth, operations):
    """schemathesis.toml: one worker, a fixed seed, no example database (so every run is alike)."""
    lines = [
        f"seed = {int(CFG['seed'])}",
        "workers = 1",
        "[generation]",
        f"max-examples = {int(CFG['max_examples'])}",
        'database = "none"',
    ]
    for scheme, token in auth.items():
        lines += [f"[auth.openapi.{scheme}]", f"bearer = {toml_value(token)}"]
    for op in operations:
        lines.append("[[operations]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in op.items()]
    return "\n".join(lines) + "\n"


if PART == "maxai":
    schema = maxai_schema()
    auth = {"BearerJWT": CFG["token"], "ApiKey": CFG["key"]}
    operations = [
        # one key that exists (the first DELETE revokes it, the next ones get 404)
        {"include-path": "/api/keys/{key_id}", "parameters": {"path.key_id": CFG["key_id"]}},
        # a built-in template, so render and run get past the lookup
        {"include-path-regex": "^/api/templates/\\{template_id\\}", "parameters": {"path.template_id": CFG["template_id"]}},
    ]
elif PART == "sabia":
    schema = sabia_schema()
    auth = {"BearerJWT": CFG["token"]}
    # the caller's own team, key and second member, so the team routes get past the lookup
    operations = [
        {"include-path-regex": "\\{teamId\\}", "parameters": {"path.teamId": CFG["team_id"]}},
        {"include-path-regex": "\\{keyId\\}", "parameters": {"path.keyId": CFG["key_id"]}},
        {"include-path-regex": "\\{userId\\}", "parameters": {"path.userId": CFG["member_id"]}},
    ]
elif PART == "tokia":
    schema = tokia_schema()
    auth = {"bearerAuth": CFG["key"]}
    # the organization's own webhook, attempt, session and prompt, so the routes that name one
    # get past the lookup
    operations = [
        {"include-path": "/webhooks/{id}/rotate-secret", "parameters": {"path.id": CFG["webhook_id"]}},
        {"include-path": "/webhooks/attempts/{attemptId}/replay", "parameters": {"path.attemptId": CFG["attempt_id"]}},
        {"include-path": "/me/sessions/{id}", "parameters": {"path.id": CFG["session_id"]}},
        {"include-path-regex": "^/me/prompts/\\{id\\}", "parameters": {"path.id": CFG["prompt_id"]}},
    ]
elif PART == "pytake":
    schema = pytake_schema()
    auth = {"BearerJWT": CFG["token"]}
    # the organization's own flow and secret, so the routes naming one get past the lookup;
    # logout is left out (it would end the session every later case authenticates with)
    operations = [
        {"include-path-regex": "^/api/v1/flows/\\{id\\}", "parameters": {"path.id": CFG["flow_id"]}},
        {"include-path-regex": "^/api/v1/secrets/\\{id\\}", "parameters": {"path.id": CFG["secret_id"]}},
        {"include-path": "/api/v1/auth/logout", "enabled": False},
    ]
elif PART == "bradax":
    schema = bradax_schema()
    auth = {"BearerJWT": CFG["token"]}
    # the project's own collection and id, so those routes get past the lookup
    operations = [
        {"include-path-regex": "^/api/v1/vectors/\\{collection\\}", "parameters": {"path.collection": CFG["collection"]}},
        {"include-path": "/api/v1/metrics", "parameters": {"query.project_id": CFG["project_id"]}},
    ]
else:
    sys.exit(f"unknown part {PART!r}")


@schemathesis.hook
def before_call(context, case, kwargs):
    """Edits the request about to be sent (auth is already in `case.headers` here)."""
    path = case.operation.path
    headers = case.headers or {}
    # the refresh route takes a refresh token, not the access token the BearerJWT scheme sends
    if PART == "maxai" and path == "/api/auth/refresh":
        for name in list(headers):
            if name.lower() == "authorization" and headers[name] == f"Bearer {CFG['token']}":
                headers[name] = f"Bearer {CFG['refresh']}"
    # a template run with the customer's real key reaches the gateway (the seed's own use)
    if PART == "maxai" and path.endswith("/run") and isinstance(case.body, dict):
        if isinstance(case.body.get("api_key"), str):
            case.body["api_key"] = CFG["key"]
    if path.endswith("/webhooks") and isinstance(case.body, dict) and "url" in case.body:
        case.body["url"] = SAFE_WEBHOOK_URL
    if PART == "tokia" and isinstance(case.body, dict):
        # `{all: true}` would revoke the key every later case authenticates with
        if path == "/api-keys/bulk-revoke" and case.body.get("all") is True:
            case.body["all"] = False
        # a prompt run with the organization's real key reaches the gateway
        if path.endswith("/run") and isinstance(case.body.get("api_key"), str):
            case.body["api_key"] = CFG["key"]


d = CFG["dir"]
schema_path = os.path.join(d, f"{PART}-schema.json")
config_path = os.path.join(d, f"{PART}-schemathesis.toml")
report_dir = os.path.join(d, f"{PART}-report")
with open(schema_path, "w") as f:
    json.dump(schema, f, indent=1)
with open(config_path, "w") as f:
    f.write(config(auth, operations))
print(f"schema: {schema_path}\nconfig: {config_path}", flush=True)

# Tokia's paths are under its server's `/v1`
base = CFG["base_url"] + ("/v1" if PART == "tokia" else "")
checks = CHECKS + (",content_type_conformance" if PART == "tokia" else "")
args = [
    "--config-file", config_path,
    "--no-color",
    "run", schema_path,
    "--url", base,
    "--checks", checks,
    "--report", "json",
    "--report-dir", report_dir,
    "--request-timeout", "10",
]
try:
    st_cli.main(args=args, prog_name="st", standalone_mode=False)
except SystemExit:
    pass
sys.stdout.flush()

# The verdict, from the JSON report: every failure fails, but those listed in `known`
# ("ST108 GET /v1/teams/{teamId}": a check's code and an operation), which are printed only.
# A server error (ST101, ST102) and an error of the run itself are never accepted.
reports = sorted(f for f in os.listdir(report_dir) if f.endswith(".json"))
if not reports:
    sys.exit("no JSON report: schemathesis did not run (see above)")
with open(os.path.join(report_dir, reports[-1])) as f:
    report = json.load(f)
known = set(CFG.get("known", []))
seen, new = set(), []
for failure in report["failures"]:
    for op in failure["operations"]:
        entry = f"{failure['code']} {op}"
        seen.add(entry)
        if entry in known and failure["code"] not in ("ST101", "ST102"):
            print(f"KNOWN FAILURE (listed in tests/contract.rs, not failing the test): {entry}: {failure['title']}")
        else:
            new.append(f"{entry}: {failure['title']}")
for entry in sorted(known - seen):
    print(f"KNOWN FAILURE NOT SEEN (fixed? remove it from tests/contract.rs): {entry}")
for e in report["errors"]:
    new.append(f"error: {json.dumps(e)[:500]}")
if not report.get("complete", False) or report["operations"]["tested"] == 0:
    new.append(f"incomplete run: {report.get('stop_reason')}, operations {report['operations']}")
print(f"contract {PART}: {report['test_cases']['generated']} test cases, "
      f"{report['operations']['tested']} operations, {len(new)} new failure(s)")
for n in new:
    print(f"FAILURE {n}")
sys.exit(1 if new else 0)
