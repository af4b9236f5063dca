#!/usr/bin/env python3
"""Assemble the shipped model folder from a training checkpoint (stdlib only).

Merges the bf16 safetensors shards of a checkpoint (tools/train/train.py --out)
into one model.safetensors, and writes config.json (Llama fields as Llama 2/3
checkpoints on the Hub have them: top-level rope_theta), generation_config.json
and the tokenizer files.

    python3 tools/train/export.py --ckpt CKPT_DIR --tokenizer-dir TOKDIR --out models/zipcache-tiny-19m
"""
import argparse
import json
import os
import shutil
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        out[name] = (info["dtype"], info["shape"], data[b:e])
    return out


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    off = 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name in sorted(tensors):
            f.write(tensors[name][2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--tokenizer-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    meta = json.load(open(os.path.join(args.ckpt, "meta.json")))
    tensors = {}
    for s in meta["shards"]:
        tensors.update(read_safetensors(os.path.join(args.ckpt, s)))
    n = 0
    for name, (dtype, shape, raw) in tensors.items():
        assert dtype == "BF16", (name, dtype)
        cnt = 1
        for d in shape:
            cnt *= d
        assert len(raw) == 2 * cnt, name
        n += cnt
    write_safetensors(os.path.join(args.out, "model.safetensors"), tensors, {"format": "pt"})
    cfg = dict(meta["config"])
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    gen = {"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"],
           "do_sample": False, "max_length": cfg["max_position_embeddings"]}
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tokenizer_dir, fn), os.path.join(args.out, fn))
    print(f"{args.out}: {len(tensors)} tensors, {n} parameters, "
          f"{os.path.getsize(os.path.join(args.out, 'model.safetensors'))} bytes")


if __name__ == "__main__":
    main()
