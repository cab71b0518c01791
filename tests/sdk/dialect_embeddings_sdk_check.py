"""The official OpenAI Python SDK, unchanged, against catraca serving a deployment of a provider
kind that also has embeddings and answers tools with `{"answer": …}` (Gemini, Bedrock).

Run by tests/dialect_gemini.rs and tests/dialect_bedrock.rs with CATRACA_BASE_URL, CATRACA_KEY
and CATRACA_DIALECT (`gemini` or `bedrock`) set; the model `<dialect>-model` is served by the
mock's dialect (Gemini's; Bedrock's Converse, ConverseStream's binary frames, SigV4-checked),
`emb-<dialect>` by its embeddings (Gemini's batchEmbedContents; Titan's).
Exits non-zero on the first mismatch; prints one line per check.
"""
import json
import os
import sys

import openai

base = os.environ["CATRACA_BASE_URL"]
key = os.environ["CATRACA_KEY"]
dialect = os.environ["CATRACA_DIALECT"]
if dialect not in ("gemini", "bedrock"):
    sys.exit(f"CATRACA_DIALECT must be gemini or bedrock, not {dialect!r}")
model = f"{dialect}-model"
emb_model = f"emb-{dialect}"
client = openai.OpenAI(base_url=base, api_key=key, max_retries=0)


def check(name, cond, detail=""):
    if not cond:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok {name}")


msgs = [{"role": "user", "content": "oi"}]
r = client.chat.completions.create(model=model, messages=msgs)
check("chat", r.choices[0].message.content == "Olá do mock da", r)
check("chat model", r.model == model, r.model)
check("chat usage", r.usage.completion_tokens == 4 and r.usage.prompt_tokens > 0, r.usage)

chunks = list(client.chat.completions.create(model=model, messages=msgs, stream=True))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("stream text", text == "Olá do mock da", text)
check("stream hides usage", all(c.usage is None for c in chunks))

chunks = list(client.chat.completions.create(
    model=model, messages=msgs, stream=True, stream_options={"include_usage": True}))
check("stream include_usage", chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4)

tools = [{"type": "function", "function": {"name": "weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
r = client.chat.completions.create(model=model, messages=msgs, tools=tools)
call = r.choices[0].message.tool_calls[0]
check("tool call", call.function.name == "weather" and json.loads(call.function.arguments)["answer"], r)
check("tool call finish", r.choices[0].finish_reason == "tool_calls", r)
r = client.chat.completions.create(model=model, tools=tools, messages=msgs + [
    r.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": "{\"temp\": 22}"}])
check("tool result answered", r.choices[0].message.content == "Olá do mock da", r)

with client.chat.completions.stream(model=model, messages=msgs, tools=tools) as s:
    final = s.get_final_completion()
fc = final.choices[0].message.tool_calls[0]
if dialect == "bedrock":
    # Bedrock's stream carries the call's arguments in pieces: they must add up
    check("stream helper tool call", fc.function.name == "weather"
          and json.loads(fc.function.arguments) == {"answer": "Olá do mock da"}, final)
    r = client.chat.completions.create(model=model, messages=msgs,
                                       response_format={"type": "json_object"})
    check("json_object", json.loads(r.choices[0].message.content) == {"answer": "Olá do mock da"}, r)
else:
    check("stream helper tool call", fc.function.name == "weather", final)

if dialect == "bedrock":
    # Titan: one text a call, 256/512/1024 dimensions, its own token count
    e = client.embeddings.create(model=emb_model, input="a b", dimensions=256)  # base64 by default
    check("embeddings", len(e.data) == 1 and len(e.data[0].embedding) == 256, e)
    check("embeddings usage", e.usage.prompt_tokens == 2, e.usage)
    e = client.embeddings.create(model=emb_model, input="a", encoding_format="float", dimensions=512)
else:
    e = client.embeddings.create(model=emb_model, input=["a", "b c"])  # base64 by default
    check("embeddings", len(e.data) == 2 and len(e.data[0].embedding) == 8, e)
    e = client.embeddings.create(model=emb_model, input="a", encoding_format="float", dimensions=4)
check("embeddings float", len(e.data[0].embedding) == (512 if dialect == "bedrock" else 4), e)

# a field the dialect cannot take: a 400 naming it, before any call
bad, field = ({"n": 2}, "n:") if dialect == "bedrock" else ({"logprobs": True}, "logprobs")
try:
    client.chat.completions.create(model=model, messages=msgs, **bad)
    check("400", False)
except openai.BadRequestError as ex:
    check("400 BadRequestError", ex.status_code == 400 and field in ex.message, ex)

try:
    client.chat.completions.create(model=model, messages=msgs,
                                   extra_headers={"x-mock-status": "403"})
    check("403", False)
except openai.PermissionDeniedError as ex:
    check("403 PermissionDeniedError", ex.status_code == 403, ex)

if dialect == "bedrock":
    try:
        client.chat.completions.create(model=model, messages=msgs,
                                       extra_headers={"x-mock-status": "429"})
        check("429", False)
    except openai.RateLimitError as ex:
        check("429 RateLimitError", ex.status_code == 429, ex)

print(f"all {dialect} SDK checks passed")
