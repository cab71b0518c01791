// The official OpenAI Node SDK, unchanged, against catraca. Run by tests/sdk.rs with
// CATRACA_BASE_URL and CATRACA_KEY set; exits non-zero on the first mismatch, one line per check.
import OpenAI, { toFile } from "openai";

const baseURL = process.env.CATRACA_BASE_URL;
const apiKey = process.env.CATRACA_KEY;
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });

function check(name, cond, detail = "") {
  if (!cond) {
    console.log(`FAIL ${name} ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok ${name}`);
}

const msgs = [{ role: "user", content: "oi" }];

const r = await client.chat.completions.create({ model: "chat-model", messages: msgs });
check("chat", r.choices[0].message.content === "Olá do mock da", r);
check("chat finish_reason", r.choices[0].finish_reason === "stop", r);

// the .stream() helper needs a finish_reason chunk and assembles the final message
const runner = client.chat.completions.stream({ model: "chat-model", messages: msgs });
let deltas = "";
runner.on("content", (d) => { deltas += d; });
const final = await runner.finalChatCompletion();
check("stream helper", final.choices[0].message.content === "Olá do mock da", final);
check("stream helper finish_reason", final.choices[0].finish_reason === "stop", final);
check("stream helper deltas", deltas === "Olá do mock da", deltas);

// raw stream with usage asked for
const s = await client.chat.completions.create({
  model: "chat-model", messages: msgs, stream: true, stream_options: { include_usage: true },
});
let last;
for await (const c of s) last = c;
check("stream include_usage", last.usage && last.usage.completion_tokens === 4, last);

// the SDK asks for base64 embeddings by default and decodes them
const e = await client.embeddings.create({ model: "emb-model", input: ["a", "b c"] });
check("embeddings", e.data.length === 2 && e.data[0].embedding.length === 8, e);
check("embeddings decoded", e.data[0].embedding.some((x) => x !== 0), e.data[0].embedding);
const e3 = await client.embeddings.create({ model: "emb-model", input: "x", dimensions: 3 });
check("embeddings dimensions", e3.data[0].embedding.length === 3, e3);

const models = [];
for await (const m of client.models.list()) models.push(m.id);
check("models", models.includes("chat-model") && models.includes("emb-model"), models);

// a transcription: the SDK puts the file before the model field
const wav = Buffer.alloc(200 * 1024, 7);
const t = await client.audio.transcriptions.create({
  file: await toFile(wav, "a.wav", { type: "audio/wav" }),
  model: "audio-b",
});
check("transcription", typeof t.text === "string" && t.text.length > 0, t);

async function expectError(name, cls, status, code, call) {
  try {
    await call();
    check(name, false, "no error");
  } catch (ex) {
    check(name, ex instanceof cls && ex.status === status && (!code || ex.code === code),
      `${ex?.constructor?.name} ${ex?.status} ${ex?.code}`);
  }
}
await expectError("401 AuthenticationError", OpenAI.AuthenticationError, 401, "invalid_api_key", () =>
  new OpenAI({ baseURL, apiKey: "sk-wrong", maxRetries: 0 }).chat.completions.create({ model: "chat-model", messages: msgs }));
await expectError("404 NotFoundError", OpenAI.NotFoundError, 404, "model_not_found", () =>
  client.chat.completions.create({ model: "no-such-model", messages: msgs }));
await expectError("429 RateLimitError", OpenAI.RateLimitError, 429, null, () =>
  client.chat.completions.create({ model: "limited-model", messages: msgs }));

console.log("all node SDK checks passed");
