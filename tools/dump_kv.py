#!/usr/bin/env python3
"""Dump one layer's queries, keys and values from a Hugging Face model for `zipcache kv`.

    python3 tools/dump_kv.py MODEL_DIR --prompt "text" --layer 10 -o kv.safetensors
    zipcache kv -i kv.safetensors --kv zipcache --kv kivi2

Writes (one sequence, head-major, float32):
  k, v  [n_kv_heads, L, head_dim]  the layer's cache (keys after RoPE)
  q     [n_heads, L, head_dim]     the layer's queries after RoPE (and q_norm for Qwen3)
Needs torch, transformers and safetensors.
"""
import argparse

import torch
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--prompt", help="prompt text")
    ap.add_argument("--prompt-file", help="read the prompt from a file")
    ap.add_argument("--ids", help="comma-separated token ids instead of text")
    ap.add_argument("--layer", type=int, default=0)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32).to(args.device).eval()
    if args.ids:
        ids = [int(x) for x in args.ids.split(",")]
    else:
        text = args.prompt if args.prompt is not None else open(args.prompt_file, encoding="utf-8").read()
        ids = AutoTokenizer.from_pretrained(args.model)(text)["input_ids"]
    input_ids = torch.tensor([ids], device=args.device)
    layers = model.model.layers
    if not 0 <= args.layer < len(layers):
        raise SystemExit(f"--layer {args.layer}: the model has {len(layers)} layers")
    attn = layers[args.layer].self_attn
    captured = {}

    def hook(module, hook_args, kwargs, output):
        hidden = kwargs.get("hidden_states", hook_args[0] if hook_args else None)
        cos, sin = kwargs["position_embeddings"]
        head_dim = module.head_dim
        shape = (*hidden.shape[:-1], -1, head_dim)
        q = module.q_proj(hidden).view(shape)
        k = module.k_proj(hidden).view(shape)
        if hasattr(module, "q_norm"):  # Qwen3
            q, k = module.q_norm(q), module.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        v = module.v_proj(hidden).view(shape).transpose(1, 2)
        captured.update(q=q[0], k=k[0], v=v[0])

    handle = attn.register_forward_hook(hook, with_kwargs=True)
    with torch.no_grad():
        model(input_ids, use_cache=False)
    handle.remove()
    tensors = {name: t.float().contiguous().cpu() for name, t in captured.items()}
    save_file(tensors, args.output, metadata={"model": args.model, "layer": str(args.layer)})
    print(f"{args.output}: layer {args.layer}, " + ", ".join(f"{n} {list(t.shape)}" for n, t in tensors.items()))


if __name__ == "__main__":
    main()
