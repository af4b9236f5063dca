# Throughput of `zipcache serve` under concurrent clients (docs/benchmarks.md, "Serving"):
# CLIENTS threads each send REQUESTS completions one after another (a ~PROMPT-word prompt,
# MAX_TOKENS tokens with ignore_eos, greedy unless TEMP is given, top-p 1 unless TOP_P is), all at once. Prints the
# generated tokens per second over the whole run and the median request latency, as one
# JSON line.
# Usage: python3 tools/serve_bench.py PORT [CLIENTS] [REQUESTS] [MAX_TOKENS] [PROMPT] [KV] [TEMP] [TOP_P]
import json, statistics, sys, threading, time, urllib.request
port = int(sys.argv[1])
clients = int(sys.argv[2]) if len(sys.argv) > 2 else 8
requests = int(sys.argv[3]) if len(sys.argv) > 3 else 4
max_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 128
prompt_words = int(sys.argv[5]) if len(sys.argv) > 5 else 200
kv = sys.argv[6] if len(sys.argv) > 6 and sys.argv[6] != "-" else None
temperature = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
top_p = float(sys.argv[8]) if len(sys.argv) > 8 else 1.0
words = "the little cat sat on a mat and then went home to play with her friend dog".split()

def post(body):
    r = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(r, timeout=1200).read())

latencies, tokens, errors = [], [], []
lock = threading.Lock()
def client(c):
    for i in range(requests):
        text = " ".join(words[(k * 5 + c * 3 + i) % len(words)] for k in range(prompt_words))
        body = {"prompt": text, "max_tokens": max_tokens, "ignore_eos": True, "temperature": temperature, "top_p": top_p}
        if kv: body["kv"] = kv
        t = time.perf_counter()
        try:
            out = post(body)
        except Exception as e:  # reported, not hidden
            with lock: errors.append(str(e))
            continue
        with lock:
            latencies.append(time.perf_counter() - t)
            tokens.append(out["usage"]["completion_tokens"])

post({"prompt": "warm up", "max_tokens": 4, **({"kv": kv} if kv else {})})
start = time.perf_counter()
threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
wall = time.perf_counter() - start
print(json.dumps({"clients": clients, "requests": len(latencies), "errors": len(errors), "max_tokens": max_tokens,
                  "prompt_words": prompt_words, "kv": kv or "default", "temperature": temperature, "top_p": top_p, "wall_s": round(wall, 3),
                  "tokens": sum(tokens), "tokens_per_s": round(sum(tokens) / wall, 1),
                  "median_latency_s": round(statistics.median(latencies), 3) if latencies else None,
                  "first_error": errors[0] if errors else None}))
