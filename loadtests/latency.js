// Open-loop load at a fixed arrival rate (k6 constant-arrival-rate): RATE requests a second
// whatever the target's latency, so a slow target shows as latency and dropped iterations
// instead of as fewer requests. Used by bench.sh for latency at 500 req/s and the curves.
//
// Env: TARGET (base URL), KEY (bearer key), RATE (req/s, 500), DURATION (10s), KIND (chat,
// stream or embeddings; STREAM=1 is the older spelling of KIND=stream), MODEL (gpt-4o-mini, or
// text-embedding-3-small for embeddings).
import http from 'k6/http';
import { check } from 'k6';

const kind = __ENV.KIND || (__ENV.STREAM === '1' ? 'stream' : 'chat');
const stream = kind === 'stream';
const embeddings = kind === 'embeddings';
const rate = parseInt(__ENV.RATE || '500', 10);
const path = embeddings ? '/v1/embeddings' : '/v1/chat/completions';
const body = JSON.stringify(
  embeddings
    ? { model: __ENV.MODEL || 'text-embedding-3-small', input: 'Olá, tudo bem? Responda em uma frase.' }
    : {
        model: __ENV.MODEL || 'gpt-4o-mini',
        stream: stream,
        messages: [{ role: 'user', content: 'Olá, tudo bem? Responda em uma frase.' }],
      },
);
const params = {
  headers: Object.assign(
    { 'content-type': 'application/json' },
    __ENV.KEY ? { authorization: `Bearer ${__ENV.KEY}` } : {},
  ),
};

export const options = {
  scenarios: {
    open: {
      executor: 'constant-arrival-rate',
      rate: rate,
      timeUnit: '1s',
      duration: __ENV.DURATION || '10s',
      preAllocatedVUs: Math.max(20, Math.ceil(rate / 50)),
      maxVUs: Math.max(200, rate),
    },
  },
  summaryTrendStats: ['med', 'p(90)', 'p(99)', 'max'],
  // a failed request or a wrong answer fails the run (k6 exits non-zero)
  thresholds: { http_req_failed: ['rate==0'], checks: ['rate==1'] },
};

export default function () {
  const r = http.post(`${__ENV.TARGET}${path}`, body, params);
  check(r, {
    'status 200': (x) => x.status === 200,
    'whole answer': (x) =>
      stream ? x.body.includes('[DONE]') : x.body.includes(embeddings ? '"embedding"' : '"choices"'),
  });
}
