"""Hold N streams open at once through a gateway and check every one ends whole.

Opens N connections, sends one streaming chat request on each (the mock sends CHUNKS chunks,
DELAY_MS apart, so every stream stays open for about CHUNKS * DELAY_MS), reads each answer to
`data: [DONE]`, and samples the gateway's RSS (VmRSS of PID) while they are open. Prints one
JSON line: streams, errors, peak RSS MiB, seconds. Exit status 1 on any error.

usage: streams.py HOST PORT KEY PID [N=10000] [CHUNKS=20] [DELAY_MS=500]
"""
import asyncio, json, resource, sys, time

host, port, key, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
n = int(sys.argv[5]) if len(sys.argv) > 5 else 10000
chunks = int(sys.argv[6]) if len(sys.argv) > 6 else 20
delay = int(sys.argv[7]) if len(sys.argv) > 7 else 500
body = json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "oi"}]}).encode()
head = (f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nx-mock-chunks: {chunks}\r\nx-mock-chunk-delay-ms: {delay}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
errors, done, peak = [], 0, 0

def rss_mib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0

async def one(i):
    global done
    try:
        r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
        w.write(head + body)
        await w.drain()
        data = await asyncio.wait_for(r.read(-1), 120)
        w.close()
        if not data.startswith(b"HTTP/1.1 200") or b"data: [DONE]" not in data:
            errors.append(f"{i}: {data[:120]!r}")
        else:
            done += 1
    except Exception as e:  # a refused or reset connection is an error too
        errors.append(f"{i}: {type(e).__name__} {e}")

async def sample():
    global peak
    while True:
        peak = max(peak, rss_mib())
        await asyncio.sleep(0.2)

async def main():
    s = asyncio.create_task(sample())
    t = time.time()
    # open them in waves of 500 so the accept queue is not the thing measured
    tasks = []
    for i in range(n):
        tasks.append(asyncio.create_task(one(i)))
        if i % 500 == 499:
            await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    s.cancel()
    print(json.dumps({"streams": n, "completed": done, "errors": len(errors), "first_errors": errors[:3],
                      "peak_rss_mib": round(peak, 1), "seconds": round(time.time() - t, 1)}))
    sys.exit(1 if errors else 0)

_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
asyncio.run(main())
