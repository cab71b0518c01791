#!/usr/bin/env python3
"""Report of one callgrind dump of the gateway (loadtests/callgrind.sh writes it):
callgrind_report.py DUMP REQUESTS TARGET. Instructions per request, the top functions by self
cost, and for catraca the per-feature breakdown (see FEATURES)."""
import re, sys
path, n, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
total = next(int(l.split()[1]) for l in open(path) if l.startswith(("summary:", "totals:")))
print(f"{target}: {total / n:,.0f} instructions per request ({total:,} over {n})")
# The dump read directly (callgrind_annotate splits a function by the files its inlined code
# comes from): self cost per function, and inclusive = self + the cost of its calls to others.
names, own, calls = {}, {}, {}
cur = callee = None
pending = False
def name_of(spec):
    m = re.match(r"\((\d+)\)(?: (.*))?", spec)
    if not m:
        return spec
    if m.group(2) is not None:
        names[m.group(1)] = m.group(2)
    return names[m.group(1)]
for line in open(path):
    if line.startswith("fn="):
        cur = name_of(line[3:].strip())
    elif line.startswith("cfn="):
        callee = name_of(line[4:].strip())
    elif line.startswith("calls="):
        pending = True
    elif line[:1] in "0123456789+-*" and cur is not None:
        parts = line.split()
        ir = int(parts[-1]) if len(parts) > 1 else 0
        if pending:
            if callee != cur:
                calls[cur] = calls.get(cur, 0) + ir
            pending = False
        else:
            own[cur] = own.get(cur, 0) + ir
inc = {f: own.get(f, 0) + calls.get(f, 0) for f in set(own) | set(calls)}
print("\ntop functions, self instructions per request:")
for name, ir in sorted(own.items(), key=lambda x: -x[1])[:20]:
    print(f"  {ir / n:8,.0f}  {name[:110]}")
if target != "catraca":
    sys.exit(0)
# Per feature: "inc" = inclusive cost of the phase's function (what it calls included; the
# largest match, since async fns show as their closures), "self" = summed self cost of every
# function matching (a library used from several phases, e.g. the metrics crate).
FEATURES = [
    ("request phase, all of it", "inc", r"gateway::request::prepare\b"),
    ("  key: SHA-256 (software under valgrind; SHA-NI on real CPUs)", "self", r"^sha2::"),
    ("  key: lookup in the config's keys", "inc", r"Live as .*KeyStore>::lookup$"),
    ("  body read ahead", "inc", r"gateway::request::read_chunk\b"),
    ("  body parse: nesting check", "inc", r"request::nesting_exceeds\b"),
    ("  JSON struct parses (request probe; usage object of the answer)", "inc", r"serde_json::de::Deserializer<R> as .*>::deserialize_struct$"),
    ("  model choice", "inc", r"request::choose_model\b"),
    ("  token estimate", "inc", r"tokens::estimate\b"),
    ("  limits (limiter)", "inc", r"gateway::request::admit\b"),
    ("  funds (reservation)", "inc", r"gateway::request::reserve\b"),
    ("upstream choice (peer)", "inc", r"gateway::upstream::next_peer\b"),
    ("upstream request rewrite", "inc", r"gateway::upstream::rewrite_request\b"),
    ("upstream body rewrite (model, include_usage)", "inc", r"gateway::upstream::body_chunk\b"),
    ("response header (status, metrics, headers)", "inc", r"gateway::stream::on_upstream_header\b"),
    ("response body: SSE and usage scan", "inc", r"gateway::stream::on_body\b"),
    ("logging phase: usage event built and queued, metrics, log line", "inc", r"ProxyHttp>::logging::\{\{closure\}\}$"),
    ("usage writer thread: JSONL line written (batched)", "inc", r"UsageWriter as .*BackgroundService>::start::\{\{closure\}\}$"),
    ("metrics (prometheus, self, every phase)", "self", r"^prometheus::"),
    ("log lines (tracing, self, every phase)", "self", r"^tracing"),
    ("allocator (mimalloc, self)", "self", r"^_?mi_|mimalloc"),
]
print("\nper feature, instructions per request:")
for label, how, pat in FEATURES:
    if how == "inc":
        hits = [ir for name, ir in inc.items() if re.search(pat, name)]
        v = max(hits) if hits else None
    else:
        hits = [ir for name, ir in own.items() if re.search(pat, name)]
        v = sum(hits) if hits else None
    print(f"  {(v or 0) / n:8,.0f}  {label}{'' if v is not None else '  (not seen: inlined, renamed or not used)'}")
