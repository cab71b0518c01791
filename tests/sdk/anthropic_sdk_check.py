"""The official Anthropic Python SDK, unchanged, against catraca's `/v1/messages`.

Run by tests/anthropic_inbound.rs with CATRACA_BASE_URL (the gateway's root: the SDK adds
`/v1/messages`), CATRACA_KEY, CATRACA_MODEL (a chat model) and CATRACA_LIMITED_MODEL (a model
whose provider answers 429). Exits non-zero on the first mismatch; prints one line per check.
"""
import base64
import json
import os
import sys

import anthropic

base = os.environ["CATRACA_BASE_URL"]
key = os.environ["CATRACA_KEY"]
model = os.environ["CATRACA_MODEL"]
limited = os.environ["CATRACA_LIMITED_MODEL"]
# the tool input the provider's mock answers with (the OpenAI mock's by default)
tool_input = json.loads(os.environ.get("CATRACA_TOOL_INPUT", '{"city": "São Paulo", "unit": "celsius"}'))
client = anthropic.Anthropic(base_url=base, api_key=key, max_retries=0)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
TOOLS = [{
    "name": "get_weather",
    "description": "the weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok {name}")


m = client.messages.create(
    model=model, max_tokens=64, system="be brief",
    messages=[{"role": "user", "content": "oi"}])
check("create", m.type == "message" and m.role == "assistant", m)
check("create text", m.content[0].type == "text" and m.content[0].text == "Olá do mock da", m)
check("create stop_reason", m.stop_reason == "end_turn", m)
check("create usage", m.usage.output_tokens == 4 and m.usage.input_tokens > 0, m.usage)
check("create model", m.model == model and m.id.startswith("msg_"), m)

m = client.messages.create(
    model=model, max_tokens=64, tools=TOOLS, tool_choice={"type": "any"},
    messages=[{"role": "user", "content": [
        {"type": "text", "text": "where is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": base64.b64encode(PNG).decode()}},
    ]}],
    extra_headers={"x-mock-tool-call": "first"})
tool = [b for b in m.content if b.type == "tool_use"]
check("tool_use", len(tool) == 1 and tool[0].name == "get_weather", m)
check("tool_use input", tool[0].input == tool_input, tool[0])
check("tool_use stop_reason", m.stop_reason == "tool_use", m)

m2 = client.messages.create(
    model=model, max_tokens=64,
    messages=[
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": m.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool[0].id, "content": "31C"}]},
    ])
check("tool_result turn", m2.content[0].text == "Olá do mock da", m2)

with client.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "oi"}],
        extra_headers={"x-mock-chunks": "6"}) as s:
    text = "".join(s.text_stream)
    final = s.get_final_message()
check("stream text", text == "Olá do mock da catraca em", text)
check("stream final text", final.content[0].text == text, final)
check("stream final usage", final.usage.output_tokens == 6 and final.usage.input_tokens > 0, final.usage)
check("stream final stop_reason", final.stop_reason == "end_turn", final)

with client.messages.stream(
        model=model, max_tokens=64, tools=TOOLS, messages=[{"role": "user", "content": "weather?"}],
        extra_headers={"x-mock-tool-call": "first", "x-mock-chunks": "5"}) as s:
    final = s.get_final_message()
tool = [b for b in final.content if b.type == "tool_use"]
check("stream tool_use", len(tool) == 1 and tool[0].input == tool_input, final)
check("stream tool stop_reason", final.stop_reason == "tool_use", final)

try:
    client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": "x"}],
                           extra_body={"top_k": 5})
    check("BadRequestError", False, "no error")
except anthropic.BadRequestError as e:
    check("BadRequestError", e.status_code == 400 and "top_k" in str(e), e)

try:
    anthropic.Anthropic(base_url=base, api_key="sk-wrong", max_retries=0).messages.create(
        model=model, max_tokens=64, messages=[{"role": "user", "content": "x"}])
    check("AuthenticationError", False, "no error")
except anthropic.AuthenticationError as e:
    check("AuthenticationError", e.status_code == 401 and e.body["error"]["type"] == "authentication_error", e)

try:
    client.messages.create(model="claude-none", max_tokens=64, messages=[{"role": "user", "content": "x"}])
    check("NotFoundError", False, "no error")
except anthropic.NotFoundError as e:
    check("NotFoundError", e.status_code == 404, e)

try:
    client.messages.create(model=limited, max_tokens=64, messages=[{"role": "user", "content": "x"}])
    check("RateLimitError", False, "no error")
except anthropic.RateLimitError as e:
    check("RateLimitError", e.status_code == 429 and e.body["error"]["type"] == "rate_limit_error", e)

try:
    with client.messages.stream(
            model=model, max_tokens=64, messages=[{"role": "user", "content": "oi"}],
            extra_headers={"x-mock-chunks": "6", "x-mock-chunk-delay-ms": "200",
                           "x-mock-fail-after-chunks": "3"}) as s:
        for _ in s.text_stream:
            pass
    check("stream broken midway", False, "no error")
except anthropic.APIStatusError as e:
    check("stream broken midway", e.body["error"]["type"] == "api_error", json.dumps(e.body))

print("all Anthropic SDK checks passed")
