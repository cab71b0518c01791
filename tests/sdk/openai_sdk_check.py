"""The official OpenAI Python SDK, unchanged, against catraca.

Run by tests/sdk.rs with CATRACA_BASE_URL and CATRACA_KEY set. Exits non-zero on the first
mismatch; prints one line per check.
"""
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


r = client.chat.completions.create(model="chat-model", messages=[{"role": "user", "content": "oi"}])
check("chat", r.choices[0].message.content == "Olá do mock da", r)
check("chat usage", r.usage.completion_tokens == 4, r.usage)

chunks = list(client.chat.completions.create(
    model="chat-model", messages=[{"role": "user", "content": "oi"}], stream=True))
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
check("stream text", text == "Olá do mock da", text)
check("stream hides usage", all(c.usage is None for c in chunks))

chunks = list(client.chat.completions.create(
    model="chat-model", messages=[{"role": "user", "content": "oi"}], stream=True,
    stream_options={"include_usage": True}))
check("stream include_usage", chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4)

e = client.embeddings.create(model="emb-model", input=["a", "b c"])
check("embeddings", len(e.data) == 2 and len(e.data[0].embedding) == 8, e)

models = [m.id for m in client.models.list()]
check("models", "chat-model" in models and "emb-model" in models, models)

try:
    openai.OpenAI(base_url=base, api_key="sk-wrong", max_retries=0).chat.completions.create(
        model="chat-model", messages=[])
    check("401", False)
except openai.AuthenticationError as ex:
    check("401 AuthenticationError", ex.status_code == 401 and ex.code == "invalid_api_key", ex)

try:
    client.chat.completions.create(model="no-such-model", messages=[])
    check("404", False)
except openai.NotFoundError as ex:
    check("404 NotFoundError", ex.status_code == 404 and ex.code == "model_not_found", ex)

try:
    client.chat.completions.create(model="limited-model", messages=[])
    check("429", False)
except openai.RateLimitError as ex:
    check("429 RateLimitError", ex.status_code == 429, ex)

print("all SDK checks passed")
