#!/usr/bin/env python3
"""Train the bundled model's tokenizer with Hugging Face `tokenizers`:
byte-level BPE behind the Llama 3 pre-tokenizer (Split on the Llama 3 regex,
then ByteLevel without its own regex), ByteLevel decoder, and a template
post-processor that adds <|begin_of_text|> in front of every sequence.

    python3 tools/train/train_tokenizer.py --corpus .traindata/stage/tok_corpus.txt \
        --vocab 4096 --out DIR
writes DIR/tokenizer.json and DIR/tokenizer_config.json
"""
import argparse
import json
import os

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
BOS = "<|begin_of_text|>"
EOS = "<|end_of_text|>"


def build(corpus_files, vocab):
    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, min_frequency=2, show_progress=False,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train(corpus_files, trainer)
    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(
            single=f"{BOS}:0 $A:0", pair=f"{BOS}:0 $A:0 {BOS}:1 $B:1",
            special_tokens=[(BOS, bos_id)]),
    ])
    return tok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=".traindata/stage/tok_corpus.txt")
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    tok = build([args.corpus], args.vocab)
    tok.save(os.path.join(args.out, "tokenizer.json"))
    cfg = {
        "add_bos_token": True, "add_eos_token": False,
        "bos_token": BOS, "eos_token": EOS, "pad_token": EOS,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 4096,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_input_names": ["input_ids", "attention_mask"],
        "added_tokens_decoder": {
            str(tok.token_to_id(t)): {"content": t, "lstrip": False, "normalized": False,
                                      "rstrip": False, "single_word": False, "special": True}
            for t in (BOS, EOS)},
    }
    with open(os.path.join(args.out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    enc = tok.encode("line torpid-bend: REGISTER_CONTENT is <38125>\nThe pass key is 4711.")
    print("vocab", tok.get_vocab_size(), "sample", enc.tokens)
    assert tok.decode(enc.ids, skip_special_tokens=True) == \
        "line torpid-bend: REGISTER_CONTENT is <38125>\nThe pass key is 4711."


if __name__ == "__main__":
    main()
