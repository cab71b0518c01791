"""The official OpenAI Python SDK, unchanged, against catraca serving a Gemini deployment.

Run by tests/dialect_gemini.rs with CATRACA_BASE_URL and CATRACA_KEY set; the model
`gemini-model` is served by the mock's Gemini dialect, `emb-gemini` by its embeddings.
Exits non-zero on the first mismatch; prints one line per check.
"""
import json
import os
import sys

import openai

base = os.environ["CATRACA_BASE_URL"]
key = os.environ["CATRACA_KEY"]
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok {name}")


msgs = [{"role": "user", "content": "oi"}]
r = client.chat.completions.create(model="gemini-model", messages=msgs)
check("chat", r.choices[0].message.content == "Olá do mock da", r)
check("chat model", r.model == "gemini-model", r.model)
check("chat usage", r.usage.completion_tokens == 4 and r.usage.prompt_tokens > 0, r.usage)

chunks = list(client.chat.completions.create(model="gemini-model", messages=msgs, stream=True))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("stream text", text == "Olá do mock da", text)
check("stream hides usage", all(c.usage is None for c in chunks))

chunks = list(client.chat.completions.create(
    model="gemini-model", messages=msgs, stream=True, stream_options={"include_usage": True}))
check("stream include_usage", chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4)

tools = [{"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
r = client.chat.completions.create(model="gemini-model", messages=msgs, tools=tools)
call = r.choices[0].message.tool_calls[0]
check("tool call", call.function.name == "weather" and json.loads(call.function.arguments)["answer"], r)
check("tool call finish", r.choices[0].finish_reason == "tool_calls", r)
r = client.chat.completions.create(model="gemini-model", tools=tools, messages=msgs + [
    r.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": "{\"temp\": 22}"}])
check("tool result answered", r.choices[0].message.content == "Olá do mock da", r)

with client.chat.completions.stream(model="gemini-model", messages=msgs, tools=tools) as s:
    final = s.get_final_completion()
check("stream helper tool call", final.choices[0].message.tool_calls[0].function.name == "weather", final)

e = client.embeddings.create(model="emb-gemini", input=["a", "b c"])  # base64 by default
check("embeddings", len(e.data) == 2 and len(e.data[0].embedding) == 8, e)
e = client.embeddings.create(model="emb-gemini", input="a", encoding_format="float", dimensions=4)
check("embeddings float", len(e.data[0].embedding) == 4, e)

try:
    client.chat.completions.create(model="gemini-model", messages=msgs, logprobs=True)
    check("400", False)
except openai.BadRequestError as ex:
    check("400 BadRequestError", ex.status_code == 400 and "logprobs" in ex.message, ex)

try:
    client.chat.completions.create(model="gemini-model", messages=msgs,
                                   extra_headers={"x-mock-status": "403"})
    check("403", False)
except openai.PermissionDeniedError as ex:
    check("403 PermissionDeniedError", ex.status_code == 403, ex)

print("all gemini SDK checks passed")
