// Closed-loop chat load: VUS virtual users, each sending one request and waiting for the whole
// answer before the next. The same script drives the mock upstream directly and through
// catraca, so the two runs differ only in the gateway.
//
// Env: TARGET (base URL, default http://127.0.0.1:8080), KEY (bearer key, optional),
// MODEL (default gpt-4o-mini), STREAM (1 for SSE), VUS (default 32), DURATION (default 20s).
import http from 'k6/http';
import { check } from 'k6';

const target = __ENV.TARGET || 'http://127.0.0.1:8080';
const key = __ENV.KEY || '';
const stream = __ENV.STREAM === '1';
const body = JSON.stringify({
  model: __ENV.MODEL || 'gpt-4o-mini',
  stream: stream,
  messages: [
    { role: 'system', content: 'Você é um assistente útil.' },
    { role: 'user', content: 'Explique em uma frase o que é uma catraca.' },
  ],
});
const params = {
  headers: Object.assign(
    { 'content-type': 'application/json' },
    key ? { authorization: `Bearer ${key}` } : {},
  ),
};

export const options = {
  vus: parseInt(__ENV.VUS || '32', 10),
  duration: __ENV.DURATION || '20s',
  discardResponseBodies: false,
  summaryTrendStats: ['avg', 'med', 'p(99)', 'max'],
};

export default function () {
  const r = http.post(`${target}/v1/chat/completions`, body, params);
  check(r, {
    'status 200': (x) => x.status === 200,
    'has content': (x) => stream ? x.body.includes('[DONE]') : x.body.includes('"choices"'),
  });
}
