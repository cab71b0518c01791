"""The official OpenAI Python SDK, unchanged, against the rest of OpenAI's surface on catraca:
models.retrieve, moderations, speech (streamed), translations, image edits, the Responses API
(plain and streamed).

Run by tests/openai_surface.rs with CATRACA_BASE_URL and CATRACA_KEY set (the gateway of that
test: chat-model, mod-model, tts, whisper, img, claude-only). Exits non-zero on the first
mismatch; prints one line per check.
"""
import io
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


m = client.models.retrieve("chat-model")
check("models.retrieve", m.id == "chat-model" and m.object == "model" and m.owned_by == "catraca", m)
try:
    client.models.retrieve("no-such-model")
    check("models.retrieve 404", False)
except openai.NotFoundError as ex:
    check("models.retrieve 404 NotFoundError", ex.status_code == 404 and ex.code == "model_not_found", ex)

mod = client.moderations.create(model="mod-model", input=["I will kill the process", "bom dia"])
check("moderations", len(mod.results) == 2 and mod.results[0].flagged and not mod.results[1].flagged, mod)
check("moderations categories", mod.results[0].categories.violence is True, mod.results[0].categories)

chunks = []
with client.audio.speech.with_streaming_response.create(
        model="tts", voice="alloy", input="Olá, São Paulo",
        extra_headers={"x-mock-chunks": "3", "x-mock-chunk-bytes": "2048"}) as r:
    check("speech content-type", r.headers.get("content-type") == "audio/mpeg", r.headers)
    for c in r.iter_bytes(chunk_size=1024):
        chunks.append(c)
audio = b"".join(chunks)
check("speech bytes", len(audio) == 3 * 2048 and audio[:3] == b"ID3", len(audio))
check("speech chunks", len(chunks) >= 3, len(chunks))

t = client.audio.translations.create(model="whisper", file=("a.wav", io.BytesIO(b"RIFF" + b"\0" * 4000)))
check("translations", t.text == "Hello from catraca's mock.", t)

img = client.images.edit(model="img", image=("a.png", io.BytesIO(b"\x89PNG" + b"\0" * 3000)),
                         prompt="a hat", n=2)
check("images.edit", len(img.data) == 2 and img.data[0].b64_json, img)

resp = client.responses.create(model="chat-model", input="um dois tres")
check("responses", resp.output_text == "Olá do mock da", resp.output_text)
check("responses usage", resp.usage.input_tokens == 3 and resp.usage.output_tokens == 4, resp.usage)

events = list(client.responses.create(model="chat-model", input="um dois", stream=True))
types = [e.type for e in events]
text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
check("responses stream text", text == "Olá do mock da", text)
check("responses stream completed", types[0] == "response.created" and types[-1] == "response.completed", types)
check("responses stream usage", events[-1].response.usage.output_tokens == 4, events[-1].response.usage)

with client.responses.stream(model="chat-model", input="um dois") as s:
    for _ in s:
        pass
    final = s.get_final_response()
check("responses.stream helper", final.output_text == "Olá do mock da", final)

try:
    client.responses.create(model="claude-only", input="oi")
    check("responses on anthropic", False)
except openai.BadRequestError as ex:
    check("responses on anthropic BadRequestError", ex.status_code == 400 and "claude-only" in ex.message, ex)

print("all surface checks passed")
