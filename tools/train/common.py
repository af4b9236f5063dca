"""Shared pieces of the bundled-model training tools: model config, checkpoint
shards (bf16 safetensors, each under the 16 MiB file limit of the device
transfer), tokenization of task examples."""
import json
import os

MODEL_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 4096,
    "hidden_size": 512,
    "intermediate_size": 1152,
    "num_hidden_layers": 6,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "hidden_act": "silu",
    "max_position_embeddings": 4096,
    "initializer_range": 0.02,
    "rms_norm_eps": 1e-5,
    "rope_theta": 100000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "mlp_bias": False,
    "pretraining_tp": 1,
    "tie_word_embeddings": False,
    "use_cache": True,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "torch_dtype": "bfloat16",
}

SHARD_BYTES = 15 * 1024 * 1024


def save_shards(state_dict, out_dir, meta):
    """bf16 tensors in several safetensors files + meta.json."""
    import torch
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    shards, cur, size = [], {}, 0
    for k in sorted(state_dict):
        t = state_dict[k].detach().to("cpu", torch.bfloat16).contiguous()
        nb = t.numel() * 2
        if cur and size + nb > SHARD_BYTES:
            shards.append(cur)
            cur, size = {}, 0
        cur[k] = t
        size += nb
    if cur:
        shards.append(cur)
    names = []
    for i, sd in enumerate(shards):
        name = f"shard{i:02d}.safetensors"
        save_file(sd, os.path.join(out_dir, name))
        names.append(name)
    meta = dict(meta)
    meta["shards"] = names
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


def load_shards(ckpt_dir):
    from safetensors.torch import load_file
    with open(os.path.join(ckpt_dir, "meta.json")) as f:
        meta = json.load(f)
    sd = {}
    for name in meta["shards"]:
        sd.update(load_file(os.path.join(ckpt_dir, name)))
    return sd, meta


def encode_example(tok, segs, bos_id, eos_id):
    """segments -> (ids, loss types): BOS + segments, EOS after the last answer.
    type 2 marks tokens to be predicted as answer tokens (including the EOS)."""
    encs = tok.encode_batch([s for s, _ in segs], add_special_tokens=False)
    ids = [bos_id]
    typ = [0]
    for (s, is_ans), e in zip(segs, encs):
        ids.extend(e.ids)
        typ.extend([2 if is_ans else 0] * len(e.ids))
    ids.append(eos_id)
    typ.append(2)
    return ids, typ
