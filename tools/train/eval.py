#!/usr/bin/env python3
"""Evaluate a model folder (HF format) on the GPU with Hugging Face transformers:
greedy decoding, uncompressed cache in the model's dtype (fp16 by default),
accuracy per task and context length on fresh prompts from seeds at or above
1,000,000 (training never uses them), and perplexity on the held-out Brown files.

    python3 tools/train/eval.py --model DIR --stage .traindata/stage --n 200 \
        --json $OUT/eval.json --md $OUT/eval.md
"""
import argparse
import json
import math
import os
import random
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402

EVAL_SEED_BASE = 1_000_000
TASK_IDS = {"lines": 1, "passkey": 2, "kv": 3, "vartrack": 4}
MAX_NEW = {"lines": 28, "passkey": 10, "kv": 10, "vartrack": 90}


def build_prompt(kind, target, seed, words, docs, count):
    """Largest prompt of this kind whose token count (with BOS) is <= target."""
    def make(param):
        g = tasks.TaskGen(words, docs, random.Random(seed))
        if kind == "lines":
            segs = g.lines(param, 1)
        elif kind == "passkey":
            segs = g.passkey(param, brown_filler=False)
        elif kind == "kv":
            segs = g.kv(param, 1)
        elif kind == "vartrack":
            segs = g.vartrack(param, 1)
        return segs[0][0], segs[1][0]

    lo, hi = {"lines": (2, 1000), "passkey": (0, 40000), "kv": (2, 1000), "vartrack": (0, 40000)}[kind]
    best = None
    while lo <= hi:  # counts grow monotonically with the parameter (up to noise for vartrack)
        mid = (lo + hi) // 2
        p, a = make(mid)
        n = count(p)
        if n <= target:
            best = (p, a, n)
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def score(kind, out, answer):
    if kind in ("lines", "passkey"):
        want = re.search(r"\d+", answer).group(0)
        got = re.search(r"\d+", out)
        return got is not None and got.group(0) == want
    if kind == "kv":
        want = re.search(r"[0-9a-f]{8}", answer).group(0)
        got = re.search(r"[0-9a-f]{8}", out)
        return got is not None and got.group(0) == want
    if kind == "vartrack":
        want = re.search(r"The answer is (\d+)", answer).group(1)
        got = re.search(r"The answer is (\d+)", out)
        return got is not None and got.group(1) == want
    raise ValueError(kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--stage", default=".traindata/stage")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--n-aux", type=int, default=100, help="prompts for kv and vartrack")
    ap.add_argument("--lengths", default="1000,2000,4000")
    ap.add_argument("--tasks", default="lines,passkey,kv,vartrack")
    ap.add_argument("--dtype", default="float16")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--ppl-window", type=int, default=1024)
    ap.add_argument("--json", default=None)
    ap.add_argument("--md", default=None)
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoTokenizer
    t0 = time.time()
    dtype = getattr(torch, args.dtype)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype, attn_implementation="sdpa").cuda().eval()
    words = json.load(open(os.path.join(args.stage, "words.json")))
    docs = [json.loads(l)["text"] for l in open(os.path.join(args.stage, "brown_train.jsonl"))]
    held = [json.loads(l)["text"] for l in open(os.path.join(args.stage, "brown_heldout.jsonl"))]
    count = lambda s: len(tok(s).input_ids)  # noqa: E731  (includes BOS)
    probe = tok("hello world").input_ids
    print("tokenizer probe", probe, "bos", tok.bos_token_id, "eos", tok.eos_token_id, flush=True)
    assert probe[0] == tok.bos_token_id and probe[1] != tok.bos_token_id, "BOS must be added once"
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token

    results = []
    examples = {}
    for kind in args.tasks.split(","):
        for L in [int(x) for x in args.lengths.split(",")]:
            n = args.n if kind in ("lines", "passkey") else args.n_aux
            if L >= 4000 and kind in ("kv", "vartrack"):
                n = min(n, 50)
            items = []
            for i in range(n):
                seed = EVAL_SEED_BASE + TASK_IDS[kind] * 100_000 + L * 10 + i
                items.append(build_prompt(kind, L, seed, words, docs, count))
            correct = 0
            ntoks = []
            for b in range(0, n, args.batch):
                chunk = items[b:b + args.batch]
                enc = tok([p for p, _, _ in chunk], return_tensors="pt", padding=True).to("cuda")
                with torch.no_grad():
                    out = model.generate(**enc, max_new_tokens=MAX_NEW[kind], do_sample=False,
                                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
                gen = tok.batch_decode(out[:, enc.input_ids.shape[1]:], skip_special_tokens=True)
                for (p, a, nt), o in zip(chunk, gen):
                    ok = score(kind, o, a)
                    correct += ok
                    ntoks.append(nt)
                    examples.setdefault(f"{kind}@{L}", [])
                    if len(examples[f"{kind}@{L}"]) < 3:
                        examples[f"{kind}@{L}"].append({"answer": a, "output": o, "ok": bool(ok)})
            r = {"task": kind, "target_tokens": L, "n": n, "correct": correct,
                 "accuracy": correct / n, "mean_prompt_tokens": sum(ntoks) / len(ntoks)}
            results.append(r)
            print(json.dumps(r), f"({time.time() - t0:.0f}s)", flush=True)

    # held-out Brown perplexity: stream of BOS+doc, non-overlapping windows
    ids = []
    nbytes = 0
    for d in held:
        ids.extend(tok(d).input_ids)
        nbytes += len(d.encode("utf-8"))
    W = args.ppl_window
    nll, cnt = 0.0, 0
    with torch.no_grad():
        for s in range(0, len(ids) - 1, W):
            x = torch.tensor(ids[s:s + W], device="cuda")[None]
            if x.shape[1] < 2:
                break
            logits = model(input_ids=x).logits.float()
            l = F.cross_entropy(logits[0, :-1], x[0, 1:], reduction="sum")
            nll += l.item()
            cnt += x.shape[1] - 1
    ppl = math.exp(nll / cnt)
    bpb = nll / math.log(2) / nbytes
    brown = {"heldout_tokens": len(ids), "scored_tokens": cnt, "window": W, "ppl": ppl,
             "bits_per_byte": bpb}
    print("brown heldout", json.dumps(brown), flush=True)

    rep = {"model": args.model, "dtype": args.dtype, "results": results, "brown": brown,
           "examples": examples, "seconds": time.time() - t0}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rep, f, indent=1)
    lines = ["| task | context (tokens, target) | mean prompt tokens | prompts | accuracy |",
             "| --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['task']} | {r['target_tokens']} | {r['mean_prompt_tokens']:.0f} | {r['n']} | "
                     f"{100 * r['accuracy']:.1f}% |")
    lines.append("")
    lines.append(f"Held-out Brown ({len(held)} files, {len(ids)} tokens, windows of {W}): "
                 f"perplexity {ppl:.2f}, {bpb:.3f} bits per byte.")
    md = "\n".join(lines)
    print(md)
    for k, v in examples.items():
        print(k, json.dumps(v[:2]))
    if args.md:
        with open(args.md, "w") as f:
            f.write(md + "\n")


if __name__ == "__main__":
    main()
