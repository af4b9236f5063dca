# A Hugging Face model folder of a real model's shape with random bf16 weights and the
# bundled model's tokenizer, for speed measurements of the commands that need a folder
# (`zipcache serve`, `generate`) where the real weights cannot be downloaded: the text
# is noise, the work per token is the real model's. Shapes: llama3-8b (32 layers,
# 4096 hidden, 32/8 heads of 128, 14336 intermediate), or --layers N of it.
# The vocabulary is the bundled tokenizer's (4096 ids), so the output layer is smaller
# than Llama 3's (128256): the products per token are the 8B's but for the lm head.
# --tokenizer DIR takes DIR's tokenizer.json and tokenizer_config.json instead (e.g. a
# Llama 3 folder's) with its vocabulary size, BOS and EOS: the real lm head, and the
# sampling work of a 128256-token vocabulary.
# Usage: python3 tools/make_synthetic_model.py OUT_DIR [--layers N] [--seed S] [--tokenizer DIR]
import argparse, json, os, shutil
import torch
from safetensors.torch import save_file

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--layers", type=int, default=32)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--tokenizer")
a = p.parse_args()
src = os.path.join(os.path.dirname(__file__), "..", "models", "zipcache-tiny-19m")
os.makedirs(a.out, exist_ok=True)
for f in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
    shutil.copy(os.path.join(src, f), a.out)
base = json.load(open(os.path.join(src, "config.json")))
if a.tokenizer:
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(a.tokenizer, f), a.out)
    tok = json.load(open(os.path.join(a.tokenizer, "tokenizer.json")))
    ids = {t: i for t, i in tok["model"]["vocab"].items()}
    ids.update({t["content"]: t["id"] for t in tok.get("added_tokens", [])})
    tc = json.load(open(os.path.join(a.tokenizer, "tokenizer_config.json")))
    def token_id(name):
        t = tc.get(name)
        t = t.get("content") if isinstance(t, dict) else t
        return ids[t] if t in ids else None
    base = dict(base, vocab_size=max(ids.values()) + 1, bos_token_id=token_id("bos_token"),
                eos_token_id=token_id("eos_token"))
    json.dump({"bos_token_id": base["bos_token_id"], "eos_token_id": base["eos_token_id"]},
              open(os.path.join(a.out, "generation_config.json"), "w"), indent=2)
H, I, NH, NKV, D, V = 4096, 14336, 32, 8, 128, base["vocab_size"]
cfg = dict(base, hidden_size=H, intermediate_size=I, num_hidden_layers=a.layers, num_attention_heads=NH,
           num_key_value_heads=NKV, head_dim=D, max_position_embeddings=8192, rope_theta=500000.0)
json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
g = torch.Generator().manual_seed(a.seed)
def w(*shape, std=0.02):
    return (torch.randn(*shape, generator=g) * std).to(torch.bfloat16)
index, shard, n = {}, {}, 0
def flush():
    global shard, n
    if not shard: return
    name = f"model-{n:05d}.safetensors"
    save_file(shard, os.path.join(a.out, name), metadata={"format": "pt"})
    for k in shard: index[k] = name
    shard, n = {}, n + 1
shard["model.embed_tokens.weight"] = w(V, H)
for l in range(a.layers):
    p_ = f"model.layers.{l}."
    shard[p_ + "input_layernorm.weight"] = torch.ones(H, dtype=torch.bfloat16)
    shard[p_ + "post_attention_layernorm.weight"] = torch.ones(H, dtype=torch.bfloat16)
    shard[p_ + "self_attn.q_proj.weight"] = w(NH * D, H)
    shard[p_ + "self_attn.k_proj.weight"] = w(NKV * D, H)
    shard[p_ + "self_attn.v_proj.weight"] = w(NKV * D, H)
    shard[p_ + "self_attn.o_proj.weight"] = w(H, NH * D)
    shard[p_ + "mlp.gate_proj.weight"] = w(I, H)
    shard[p_ + "mlp.up_proj.weight"] = w(I, H)
    shard[p_ + "mlp.down_proj.weight"] = w(H, I)
    if l % 8 == 7: flush()
shard["model.norm.weight"] = torch.ones(H, dtype=torch.bfloat16)
shard["lm_head.weight"] = w(V, H)
flush()
json.dump({"metadata": {}, "weight_map": index}, open(os.path.join(a.out, "model.safetensors.index.json"), "w"), indent=2)
print(f"{a.out}: {a.layers} layers, vocab {V}, {n} shards")
