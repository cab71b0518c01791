"""The official OpenAI Python SDK, unchanged, against catraca serving a deployment of another
provider kind (Anthropic, Azure).

Run by tests/dialect_anthropic.rs and tests/dialect_azure.rs with CATRACA_BASE_URL, CATRACA_KEY,
CATRACA_MODEL set; CATRACA_TOOL_CALLS=1 when the deployment's mock answers tools with a call.
Exits non-zero on the first mismatch; prints one line per check.
"""
import json
import os
import sys

import openai

base = os.environ["CATRACA_BASE_URL"]
key = os.environ["CATRACA_KEY"]
model = os.environ["CATRACA_MODEL"]
# the model name answers carry: the public one when translated; an OpenAI-shaped provider's
# (Azure's) own, passed through as it is
answer_model = os.environ.get("CATRACA_ANSWER_MODEL", model)
tool_calls = os.environ.get("CATRACA_TOOL_CALLS") == "1"
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok {name}")


msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "oi"}]
r = client.chat.completions.create(model=model, messages=msgs)
check("chat", r.choices[0].message.content == "Olá do mock da", r)
check("chat model", r.model == answer_model, r.model)
check("chat finish", r.choices[0].finish_reason == "stop", r)
check("chat usage", r.usage.completion_tokens == 4 and r.usage.prompt_tokens > 0, r.usage)

chunks = list(client.chat.completions.create(model=model, messages=msgs, stream=True))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("stream text", text == "Olá do mock da", text)
check("stream hides usage", all(c.usage is None for c in chunks))
check("stream model", all(c.model == answer_model for c in chunks))

chunks = list(client.chat.completions.create(
    model=model, messages=msgs, stream=True, stream_options={"include_usage": True}))
check("stream include_usage", chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4,
      chunks[-1])

tools = [{"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
r = client.chat.completions.create(model=model, messages=msgs, tools=tools)
if tool_calls:
    call = r.choices[0].message.tool_calls[0]
    check("tool call", call.function.name == "weather"
          and json.loads(call.function.arguments) == {"city": "mock"}, r)
    check("tool call finish", r.choices[0].finish_reason == "tool_calls", r)
    r2 = client.chat.completions.create(model=model, messages=msgs + [
        r.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "{\"temp\": 22}"}])
    check("tool result answered", r2.choices[0].message.content == "Olá do mock da", r2)
    with client.chat.completions.stream(model=model, messages=msgs, tools=tools) as s:
        final = s.get_final_completion()
    fc = final.choices[0].message.tool_calls[0]
    check("stream helper tool call", fc.function.name == "weather"
          and fc.function.parsed_arguments == {"city": "mock"}
          if hasattr(fc.function, "parsed_arguments") and fc.function.parsed_arguments is not None
          else json.loads(fc.function.arguments) == {"city": "mock"}, final)
else:
    check("tools accepted", r.choices[0].message.content == "Olá do mock da", r)

try:
    client.chat.completions.create(model=model, messages=msgs, extra_headers={"x-mock-status": "403"})
    check("403", False)
except openai.PermissionDeniedError as ex:
    check("403 PermissionDeniedError", ex.status_code == 403, ex)

try:
    client.chat.completions.create(model=model, messages=msgs, extra_headers={"x-mock-status": "400"})
    check("400", False)
except openai.BadRequestError as ex:
    check("400 BadRequestError", ex.status_code == 400, ex)

print(f"all {model} SDK checks passed")
