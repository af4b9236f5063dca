#!/usr/bin/env python3
"""Train the bundled zipcache model (Llama architecture, HF format) on the GPU.

Time-budgeted and resumable: it stops itself after --budget seconds of training,
saves bf16 weights as small safetensors shards plus meta.json (global steps,
tokens, seconds, loss history), and a later call continues from them with
--init (the optimizer restarts with a short warmup; the learning rate follows a
warmup / constant / linear-decay shape inside each call, so every call ends on
a decayed, shippable checkpoint). The curriculum is a function of the global
training seconds: rows of 1024 tokens first, then 2048, then 4096.

Data is generated on the fly by worker processes (tools/train/tasks.py plus
windows of the Brown training split), seeded by --seed, the call index and the
worker id; all training seeds are below 1,000,000 (evaluation uses seeds from
1,000,000 up).

    python3 tools/train/train.py --stage .traindata/stage --tokenizer DIR/tokenizer.json \
        --out $OUT/ckpt --budget 340 [--init PREV_CKPT_OR_MODEL_DIR] [--hf-out /tmp/hf]
"""
import argparse
import json
import math
import os
import random
import sys
import time

os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import tasks  # noqa: E402

TASK_WEIGHTS = {"lines": 0.40, "passkey": 0.15, "kv": 0.15, "vartrack": 0.20, "copy": 0.10}
N_QUERIES = {"lines": (1, 4), "passkey": (1, 1), "kv": (1, 4), "vartrack": (1, 2), "copy": (1, 1)}
MIN_EX = 150


def curriculum(global_s):
    if global_s < 60:
        return 1024
    if global_s < 180:
        return 2048
    return 4096


def worker_main(wid, seed, q, shared_len, tokens_per_step, stage, tok_path, brown_npy, p_brown_row):
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    import numpy as np
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tok_path)
    bos = tok.token_to_id("<|begin_of_text|>")
    eos = tok.token_to_id("<|end_of_text|>")
    brown = np.load(brown_npy)
    words = json.load(open(os.path.join(stage, "words.json")))
    docs = [json.loads(l)["text"] for l in open(os.path.join(stage, "brown_train.jsonl"))]
    rng = random.Random(seed)
    gen = tasks.TaskGen(words, docs, rng)
    kinds = list(TASK_WEIGHTS)
    wts = [TASK_WEIGHTS[k] for k in kinds]

    def brown_chunk(n):
        s = rng.randrange(0, len(brown) - n)
        ids = [bos] + brown[s:s + n - 1].tolist()
        return ids, [0] + [1] * (n - 1)

    while True:
        L = shared_len.value
        B = max(1, tokens_per_step // L)
        ids_b = np.empty((B, L + 1), dtype=np.int32)
        typ_b = np.empty((B, L + 1), dtype=np.uint8)
        for b in range(B):
            row, typ = [], []
            whole_brown = rng.random() < p_brown_row
            while len(row) < L + 1:
                rem = L + 1 - len(row)
                if whole_brown or rem < MIN_EX + 20:
                    n = rem if (rem < MIN_EX + 20 or rng.random() < 0.5) else rng.randint(MIN_EX, rem)
                    i, t = brown_chunk(n)
                    row += i
                    typ += t
                    continue
                kind = rng.choices(kinds, wts)[0]
                hi = min(rem, L)
                if kind == "copy":
                    hi = min(hi, 700)
                target = rng.randint(MIN_EX, hi)
                nq = rng.randint(*N_QUERIES[kind])
                for _ in range(3):
                    segs = gen.example(kind, target, n_queries=nq)
                    i, t = common.encode_example(tok, segs, bos, eos)
                    if len(i) <= rem:
                        break
                    target = int(target * 0.85 * rem / len(i))
                if len(i) > rem:
                    i, t = brown_chunk(rem)
                row += i
                typ += t
            ids_b[b] = row[:L + 1]
            typ_b[b] = typ[:L + 1]
        q.put((L, ids_b, typ_b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage", default=".traindata/stage")
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--init", default=None)
    ap.add_argument("--hf-out", default=None)
    ap.add_argument("--init-seconds", type=float, default=340.0,
                    help="global training seconds assumed when --init is a model folder (curriculum)")
    ap.add_argument("--budget", type=float, default=420.0, help="training seconds in this call")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=150)
    ap.add_argument("--decay-frac", type=float, default=0.25)
    ap.add_argument("--tokens-per-step", type=int, default=131072)
    ap.add_argument("--workers", type=int, default=12)
    ap.add_argument("--p-brown-row", type=float, default=0.0,
                    help="probability that a whole row is Brown text; Brown also fills row ends. "
                         "Brown has only ~1.5M training tokens: a 0.15 share made the model memorize it")
    ap.add_argument("--heldout-every", type=int, default=200)
    ap.add_argument("--log-every", type=int, default=25)
    args = ap.parse_args()

    t_start = time.time()
    import multiprocessing as mp
    import numpy as np
    from tokenizers import Tokenizer

    # ---- data: Brown training ids once, then workers
    tok = Tokenizer.from_file(args.tokenizer)
    bos = tok.token_to_id("<|begin_of_text|>")
    docs = [json.loads(l)["text"] for l in open(os.path.join(args.stage, "brown_train.jsonl"))]
    flat = []
    for e in tok.encode_batch(docs, add_special_tokens=False):
        flat.append(bos)
        flat.extend(e.ids)
    brown_npy = "/tmp/brown_train_ids.npy"
    np.save(brown_npy, np.array(flat, dtype=np.int32))
    print(f"brown train tokens {len(flat)}  ({time.time() - t_start:.1f}s)", flush=True)
    hflat = []
    for l in open(os.path.join(args.stage, "brown_heldout.jsonl")):
        hflat.append(bos)
        hflat.extend(tok.encode(json.loads(l)["text"], add_special_tokens=False).ids)
    nh = min(64, len(hflat) // 1024)
    held_np = np.array(hflat[:nh * 1024], dtype=np.int64).reshape(nh, 1024)

    prev_meta = None
    if args.init and os.path.exists(os.path.join(args.init, "meta.json")):
        with open(os.path.join(args.init, "meta.json")) as f:
            prev_meta = json.load(f)
    elif args.init:  # a shipped model folder (model.safetensors): continue from its weights
        prev_meta = {"global_seconds": args.init_seconds, "global_steps": 0, "global_tokens": 0,
                     "calls": 1, "history": []}
    g_seconds = prev_meta["global_seconds"] if prev_meta else 0.0
    g_steps = prev_meta["global_steps"] if prev_meta else 0
    g_tokens = prev_meta["global_tokens"] if prev_meta else 0
    call_idx = prev_meta["calls"] if prev_meta else 0
    assert args.seed < 1000, "training seeds stay below 1,000,000"

    ctx = mp.get_context("fork")
    shared_len = ctx.Value("i", curriculum(g_seconds))
    q = ctx.Queue(maxsize=3 * args.workers)
    procs = []
    for w in range(args.workers):
        seed = args.seed * 1000 + call_idx * 50 + w
        p = ctx.Process(target=worker_main, daemon=True,
                        args=(w, seed, q, shared_len, args.tokens_per_step, args.stage,
                              args.tokenizer, brown_npy, args.p_brown_row))
        p.start()
        procs.append(p)

    import torch
    import torch.nn.functional as F
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(args.seed * 1000 + call_idx)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    cfg = LlamaConfig(**{k: v for k, v in common.MODEL_CONFIG.items()
                         if k not in ("architectures", "model_type", "torch_dtype")})
    try:
        cfg._attn_implementation = "sdpa"
    except Exception as e:  # noqa: BLE001
        print("could not set sdpa:", e)
    model = LlamaForCausalLM(cfg)
    print("attn implementation", getattr(model.config, "_attn_implementation", "?"), flush=True)
    if args.init:
        if os.path.exists(os.path.join(args.init, "meta.json")):
            sd, _ = common.load_shards(args.init)
        else:
            from safetensors.torch import load_file
            sd = load_file(os.path.join(args.init, "model.safetensors"))
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)
        print("loaded", args.init, "missing", missing, "unexpected", unexpected, flush=True)
    model = model.cuda()
    nparams = sum(p.numel() for p in model.parameters())
    print(f"params {nparams / 1e6:.2f}M", flush=True)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 and "embed" not in n else no_decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)
    warmup = args.warmup if not args.init else 50

    def lr_at(step, frac):
        if step < warmup:
            return args.lr * (step + 1) / warmup
        d0 = 1.0 - args.decay_frac
        if frac <= d0:
            return args.lr
        x = min(1.0, (frac - d0) / args.decay_frac)
        return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * (1 - x))

    history = prev_meta.get("history", []) if prev_meta else []
    held_t = torch.from_numpy(held_np).cuda()

    def heldout_loss():
        model.eval()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            lg = model(input_ids=held_t, use_cache=False).logits
            l = F.cross_entropy(lg[:, :-1].float().reshape(-1, lg.size(-1)), held_t[:, 1:].reshape(-1))
        model.train()
        return l.item()
    print(f"setup done {time.time() - t_start:.1f}s; training for {args.budget}s", flush=True)
    model.train()
    t0 = time.time()
    step = 0
    tokens = 0
    acc = {"lm": 0.0, "lm_n": 0, "task": 0.0, "task_n": 0, "tacc": 0.0}
    wait_s = 0.0
    mid_saved = False

    def save(tag_dir, elapsed):
        meta = {"config": common.MODEL_CONFIG, "global_seconds": g_seconds + elapsed,
                "global_steps": g_steps + step, "global_tokens": g_tokens + tokens,
                "calls": call_idx + 1, "history": history, "args": vars(args),
                "params": nparams}
        common.save_shards(model.state_dict(), tag_dir, meta)

    while True:
        elapsed = time.time() - t0
        if elapsed >= args.budget:
            break
        frac = elapsed / args.budget
        shared_len.value = curriculum(g_seconds + elapsed)
        tw = time.time()
        L, ids, typ = q.get()
        wait_s += time.time() - tw
        ids = torch.from_numpy(ids).cuda(non_blocking=True).long()
        typ = torch.from_numpy(typ).cuda(non_blocking=True)
        x, y, ty = ids[:, :-1], ids[:, 1:], typ[:, 1:]
        lr = lr_at(step, frac)
        for gparam in opt.param_groups:
            gparam["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x, use_cache=False).logits
        ce = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1),
                             reduction="none").view_as(y)
        m1 = (ty == 1).float()
        m2 = (ty == 2).float()
        n1, n2 = m1.sum(), m2.sum()
        lm_loss = (ce * m1).sum() / n1.clamp(min=1)
        task_loss = (ce * m2).sum() / n2.clamp(min=1)
        loss = lm_loss + task_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += x.numel()
        if step % args.log_every == 0:
            with torch.no_grad():
                pred = logits.argmax(-1)
                tacc = ((pred == y).float() * m2).sum() / n2.clamp(min=1)
            rec = {"gstep": g_steps + step, "gsec": round(g_seconds + time.time() - t0, 1),
                   "L": L, "lr": round(lr, 6), "lm": round(lm_loss.item(), 4),
                   "task": round(task_loss.item(), 4), "task_tok_acc": round(tacc.item(), 4),
                   "gnorm": round(gn.item(), 3),
                   "tok_per_s": round(tokens / (time.time() - t0)), "data_wait_s": round(wait_s, 1)}
            if step % args.heldout_every == 0:
                rec["heldout_lm"] = round(heldout_loss(), 4)
            history.append(rec)
            print(json.dumps(rec), flush=True)
        if not mid_saved and elapsed > args.budget * 0.5:
            save(args.out, time.time() - t0)
            mid_saved = True
    elapsed = time.time() - t0
    for p in procs:
        p.terminate()
    hl = heldout_loss()
    history.append({"gstep": g_steps + step, "final_heldout_lm": round(hl, 4),
                    "final_heldout_ppl": round(math.exp(hl), 2)})
    print(json.dumps(history[-1]), flush=True)
    save(args.out, elapsed)
    print(f"saved {args.out}: steps {step} tokens {tokens} in {elapsed:.1f}s "
          f"({tokens / elapsed:.0f} tok/s), data wait {wait_s:.1f}s", flush=True)
    if args.hf_out:
        import shutil
        model = model.to(torch.bfloat16)
        model.save_pretrained(args.hf_out)
        tdir = os.path.dirname(os.path.abspath(args.tokenizer))
        for fn in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(tdir, fn), os.path.join(args.hf_out, fn))
        print("hf model saved to", args.hf_out, flush=True)


if __name__ == "__main__":
    main()
