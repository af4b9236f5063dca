# Turn-2 latency of `zipcache serve` with and without its prompt cache (docs/benchmarks.md,
# "Serving"): a long first message (~1400 tokens), a 16-token reply, then a short follow-up sent
# with the whole conversation, as chat clients do. Usage: python3 tools/prompt_cache_bench.py PORT [REPS]
import json, sys, time, urllib.request
port = int(sys.argv[1]); reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
def post(body):
    r = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"})
    t = time.perf_counter(); out = json.loads(urllib.request.urlopen(r, timeout=600).read()); return out, time.perf_counter() - t
words = "the little cat sat on a mat and then went home to play with her friend dog".split()
for rep in range(reps):
    long_text = " ".join(words[(i * 7 + rep) % len(words)] for i in range(1400))
    msgs = [{"role": "user", "content": long_text}]
    r1, t1 = post({"messages": msgs, "max_tokens": 16, "temperature": 0})
    msgs += [{"role": "assistant", "content": r1["choices"][0]["message"]["content"]}, {"role": "user", "content": "and then?"}]
    r2, t2 = post({"messages": msgs, "max_tokens": 16, "temperature": 0})
    u = r2["usage"]
    print(f"rep {rep}: turn1 {t1*1000:.0f} ms ({r1['usage']['prompt_tokens']} prompt tokens); turn2 {t2*1000:.0f} ms, "
          f"prompt {u['prompt_tokens']} tokens, cached {u['prompt_tokens_details']['cached_tokens']}, "
          f"prefill {r2['zipcache']['prefill_seconds']*1000:.0f} ms")
