"""The official OpenAI Python SDK, unchanged, against catraca serving a Bedrock deployment.

Run by tests/dialect_bedrock.rs with CATRACA_BASE_URL and CATRACA_KEY set; the model
`bedrock-model` is served by the mock's Bedrock dialect (Converse, ConverseStream's binary
frames, SigV4-checked), `emb-bedrock` by its Titan embeddings.
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
r = client.chat.completions.create(model="bedrock-model", messages=msgs)
check("chat", r.choices[0].message.content == "Olá do mock da", r)
check("chat model", r.model == "bedrock-model", r.model)
check("chat usage", r.usage.completion_tokens == 4 and r.usage.prompt_tokens > 0, r.usage)

chunks = list(client.chat.completions.create(model="bedrock-model", messages=msgs, stream=True))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("stream text", text == "Olá do mock da", text)
check("stream hides usage", all(c.usage is None for c in chunks))

chunks = list(client.chat.completions.create(
    model="bedrock-model", messages=msgs, stream=True, stream_options={"include_usage": True}))
check("stream include_usage", chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4)

tools = [{"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
r = client.chat.completions.create(model="bedrock-model", messages=msgs, tools=tools)
call = r.choices[0].message.tool_calls[0]
check("tool call", call.function.name == "weather" and json.loads(call.function.arguments)["answer"], r)
check("tool call finish", r.choices[0].finish_reason == "tool_calls", r)
r = client.chat.completions.create(model="bedrock-model", tools=tools, messages=msgs + [
    r.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": "{\"temp\": 22}"}])
check("tool result answered", r.choices[0].message.content == "Olá do mock da", r)

with client.chat.completions.stream(model="bedrock-model", messages=msgs, tools=tools) as s:
    final = s.get_final_completion()
fc = final.choices[0].message.tool_calls[0]
check("stream helper tool call", fc.function.name == "weather"
      and json.loads(fc.function.arguments) == {"answer": "Olá do mock da"}, final)

r = client.chat.completions.create(model="bedrock-model", messages=msgs,
                                   response_format={"type": "json_object"})
check("json_object", json.loads(r.choices[0].message.content) == {"answer": "Olá do mock da"}, r)

e = client.embeddings.create(model="emb-bedrock", input="a b", dimensions=256)  # base64 by default
check("embeddings", len(e.data) == 1 and len(e.data[0].embedding) == 256, e)
check("embeddings usage", e.usage.prompt_tokens == 2, e.usage)
e = client.embeddings.create(model="emb-bedrock", input="a", encoding_format="float", dimensions=512)
check("embeddings float", len(e.data[0].embedding) == 512, e)

try:
    client.chat.completions.create(model="bedrock-model", messages=msgs, n=2)
    check("400", False)
except openai.BadRequestError as ex:
    check("400 BadRequestError", ex.status_code == 400 and "n:" in ex.message, ex)

try:
    client.chat.completions.create(model="bedrock-model", messages=msgs,
                                   extra_headers={"x-mock-status": "403"})
    check("403", False)
except openai.PermissionDeniedError as ex:
    check("403 PermissionDeniedError", ex.status_code == 403, ex)

try:
    client.chat.completions.create(model="bedrock-model", messages=msgs,
                                   extra_headers={"x-mock-status": "429"})
    check("429", False)
except openai.RateLimitError as ex:
    check("429 RateLimitError", ex.status_code == 429, ex)

print("all bedrock SDK checks passed")
