#!/usr/bin/env python3
"""Makes the architecture fixtures in tests/fixtures/arch/: tiny random-init GPT-2, OPT and
GPT-NeoX models saved by Hugging Face transformers, with their logits and greedy generations,
for the importer's tests (issue 9). Needs PyTorch and transformers (written for PyTorch 2.11 and
transformers 5.x; 4.x should work too). Everything runs on the CPU in float32, so the output
does not depend on the GPU.

Usage: python3 scripts/make_arch_fixtures.py [OUTDIR]     (default: tests/fixtures/arch)

Models (width 64, 4 heads of 16, FFN 128, 2 layers, 64 positions, seeds fixed):
  gpt2                    GPT2LMHeadModel, vocab 383, gelu_new, tied embeddings
  opt                     OPTForCausalLM, vocab 384, relu, learned positions offset by 2, tied
  neox_partial_parallel   GPTNeoXForCausalLM, vocab 384 (padded above a notional tokenizer of
                          360 ids), rotary on 25% of each head (4 of 16 dims), parallel residual,
                          gelu (erf), untied output head
  neox_full_sequential    GPTNeoXForCausalLM as above but rotary on all 16 dims, sequential
                          residual, and saved in 2 shards (model.safetensors.index.json)
After the random init, every LayerNorm weight and bias and every other bias gets N(0, 0.1)
added, so that an importer that drops or swaps any of them gets different logits.

Each OUTDIR/<name>/ holds:
  config.json              as save_pretrained writes it
  model.safetensors        fp32 weights (save_pretrained, safe_serialization); for the sharded
                           model instead model.safetensors.index.json and
                           model-0000{1,2}-of-00002.safetensors
  ids.txt                  the 24 input ids, space-separated, one line (all below 360)
  logits.bin               the logits of one forward pass over ids.txt (no cache), at every
                           position: 8 bytes magic "MTXLGT01", u32 T (24), u32 V (vocab size),
                           then T*V float32, row-major (position, vocab), all little-endian
  greedy.txt               greedy decoding of 12 new tokens after the first 8 ids:
                             prompt: <8 ids>
                             cache: <12 ids>       generate(use_cache=True)
                             no_cache: <12 ids>    generate(use_cache=False)
                             min_margin: <float>   the smallest gap between the two largest
                                                   logits over the 12 steps (a tiny gap means a
                                                   faithful importer may still pick the other)
save_pretrained may also write generation_config.json there; the tests do not read it.
The script checks that both generate() calls agree with a plain argmax loop over full forward
passes, that reloading the saved files gives the same logits bit for bit, and that everything
written stays under 2 MB; it stops with an error otherwise.
"""
import json
import os
import struct
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, GPT2Config, GPTNeoXConfig, OPTConfig

IDS = [17, 203, 5, 88, 341, 120, 9, 256, 77, 300, 45, 199, 3, 150, 222, 61, 318, 99, 240, 12, 175, 286, 33, 130]
PROMPT_LEN = 8
NEW_TOKENS = 12
MAX_TOTAL_BYTES = 2 * 1024 * 1024
COMMON = dict(max_position_embeddings=64)  # NeoX and OPT spelling; GPT-2 gets n_positions


def gpt2_config():
    return GPT2Config(vocab_size=383, n_positions=64, n_embd=64, n_layer=2, n_head=4, n_inner=128,
                      activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                      initializer_range=0.2, bos_token_id=0, eos_token_id=0, tie_word_embeddings=True)


def opt_config():
    return OPTConfig(vocab_size=384, hidden_size=64, word_embed_proj_dim=64, num_hidden_layers=2, ffn_dim=128,
                     num_attention_heads=4, activation_function="relu", dropout=0.0, attention_dropout=0.0,
                     layerdrop=0.0, init_std=0.2, do_layer_norm_before=True, enable_bias=True,
                     pad_token_id=1, bos_token_id=2, eos_token_id=2, tie_word_embeddings=True, **COMMON)


def neox_config(rotary_pct, parallel):
    common = dict(vocab_size=384, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=128, hidden_act="gelu", use_parallel_residual=parallel,
                  attention_dropout=0.0, hidden_dropout=0.0, initializer_range=0.2, tie_word_embeddings=False,
                  bos_token_id=0, eos_token_id=0, **COMMON)
    try:  # the spelling every version has read (5.x turns it into rope_parameters)
        config = GPTNeoXConfig(rotary_pct=rotary_pct, rotary_emb_base=10000, **common)
    except TypeError:
        config = GPTNeoXConfig(rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                "partial_rotary_factor": rotary_pct}, **common)
    got = rotary_fraction(config)
    if got is None or abs(got - rotary_pct) > 1e-12:
        raise SystemExit(f"GPTNeoXConfig took rotary fraction {got}, expected {rotary_pct}")
    return config


# name, config factory, seed, sharded
MODELS = [
    ("gpt2", gpt2_config, 1001, False),
    ("opt", opt_config, 1002, False),
    ("neox_partial_parallel", lambda: neox_config(0.25, True), 1003, False),
    ("neox_full_sequential", lambda: neox_config(1.0, False), 1004, True),
]


def rotary_fraction(config):
    """The rotary fraction the model will use, whichever way this transformers version stores it."""
    params = getattr(config, "rope_parameters", None) or {}
    if isinstance(params, dict) and "partial_rotary_factor" in params:
        return params["partial_rotary_factor"]
    for key in ("partial_rotary_factor", "rotary_pct"):
        if getattr(config, key, None) is not None:
            return getattr(config, key)
    return None


def build(config):
    try:
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
    except TypeError:  # older versions without the keyword
        model = AutoModelForCausalLM.from_config(config)
    return model.float().eval()


def perturb(model, seed):
    """Moves every LayerNorm parameter and every bias away from its init (ones and zeros)."""
    gen = torch.Generator().manual_seed(seed)
    done = set()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                for p in (module.weight, module.bias):
                    if p is not None and id(p) not in done:
                        p.add_(torch.randn(p.shape, generator=gen) * 0.1)
                        done.add(id(p))
        for name, p in model.named_parameters():
            if name.endswith("bias") and id(p) not in done:
                p.add_(torch.randn(p.shape, generator=gen) * 0.1)
                done.add(id(p))
    if not done:
        raise SystemExit("perturb: found no LayerNorm or bias parameters")
    return len(done)


def forward_logits(model, ids):
    with torch.no_grad():
        x = torch.tensor([ids], dtype=torch.long)
        out = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False)
    return out.logits[0].float().contiguous()


def greedy_by_hand(model, prompt, steps):
    """Argmax of full forward passes, no cache: the definition that generate() must match."""
    ids, margins = list(prompt), []
    for _ in range(steps):
        last = forward_logits(model, ids)[-1]
        top = torch.topk(last, 2).values
        margins.append(float(top[0] - top[1]))
        ids.append(int(torch.argmax(last)))
    return ids[len(prompt):], min(margins)


def greedy_generate(model, prompt, use_cache):
    x = torch.tensor([prompt], dtype=torch.long)
    gen = transformers.GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=NEW_TOKENS,
                                        min_new_tokens=0, eos_token_id=None, pad_token_id=0,
                                        use_cache=use_cache)
    with torch.no_grad():
        out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), generation_config=gen)
    new = out[0, len(prompt):].tolist()
    if len(new) != NEW_TOKENS:
        raise SystemExit(f"generate(use_cache={use_cache}) gave {len(new)} tokens, expected {NEW_TOKENS}")
    return new


def write_logits(path, logits):
    t, v = logits.shape
    with open(path, "wb") as f:
        f.write(b"MTXLGT01")
        f.write(struct.pack("<II", t, v))
        f.write(logits.numpy().astype("<f4").tobytes())


def save_model(model, outdir, sharded):
    if not sharded:
        model.save_pretrained(outdir, safe_serialization=True)
        return
    total = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    # Shards are filled tensor by tensor up to the limit; look for a limit that gives exactly two.
    for fraction in (0.6, 0.55, 0.65, 0.5, 0.7, 0.75):
        for name in os.listdir(outdir):
            if name.endswith(".safetensors") or name.endswith(".index.json"):
                os.remove(os.path.join(outdir, name))
        model.save_pretrained(outdir, safe_serialization=True, max_shard_size=int(total * fraction))
        shards = sorted(n for n in os.listdir(outdir) if n.endswith(".safetensors"))
        if len(shards) == 2 and os.path.exists(os.path.join(outdir, "model.safetensors.index.json")):
            return
    raise SystemExit(f"{outdir}: could not save in exactly 2 shards (got {shards})")


def make(root, name, make_config, seed, sharded):
    outdir = os.path.join(root, name)
    os.makedirs(outdir, exist_ok=True)
    for old in os.listdir(outdir):
        os.remove(os.path.join(outdir, old))
    torch.manual_seed(seed)
    config = make_config()
    model = build(config)
    perturbed = perturb(model, seed + 1)
    vocab = model.config.vocab_size
    if max(IDS) >= vocab:
        raise SystemExit(f"{name}: ids must be below the vocab size {vocab}")

    model.generation_config.eos_token_id = None  # 12 tokens whatever comes out
    logits = forward_logits(model, IDS)
    prompt = IDS[:PROMPT_LEN]
    by_hand, margin = greedy_by_hand(model, prompt, NEW_TOKENS)
    cached = greedy_generate(model, prompt, True)
    uncached = greedy_generate(model, prompt, False)
    if cached != by_hand or uncached != by_hand:
        raise SystemExit(f"{name}: generate() disagrees with the argmax loop: cache {cached}, "
                         f"no cache {uncached}, by hand {by_hand}")

    save_model(model, outdir, sharded)
    reloaded = AutoModelForCausalLM.from_pretrained(outdir, attn_implementation="eager").float().eval()
    if not torch.equal(forward_logits(reloaded, IDS), logits):
        raise SystemExit(f"{name}: the saved model does not give the same logits")

    with open(os.path.join(outdir, "ids.txt"), "w") as f:
        f.write(" ".join(map(str, IDS)) + "\n")
    write_logits(os.path.join(outdir, "logits.bin"), logits)
    with open(os.path.join(outdir, "greedy.txt"), "w") as f:
        f.write("prompt: " + " ".join(map(str, prompt)) + "\n")
        f.write("cache: " + " ".join(map(str, cached)) + "\n")
        f.write("no_cache: " + " ".join(map(str, uncached)) + "\n")
        f.write(f"min_margin: {margin:.6g}\n")

    params = sum(p.numel() for p in model.parameters())
    print(f"{name}: {type(model).__name__}, {params} parameters, vocab {vocab}, "
          f"rotary fraction {rotary_fraction(model.config)}, {perturbed} LayerNorm/bias tensors perturbed, "
          f"min top-2 margin {margin:.4g}")
    for file in sorted(os.listdir(outdir)):
        print(f"  wrote {os.path.join(outdir, file)} ({os.path.getsize(os.path.join(outdir, file))} bytes)")
    return sum(os.path.getsize(os.path.join(outdir, n)) for n in os.listdir(outdir))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "fixtures", "arch")
    root = os.path.normpath(root)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, writing to {root}")
    torch.set_num_threads(1)  # one thread: the same summation order on every machine
    torch.use_deterministic_algorithms(True)
    total = sum(make(root, *spec) for spec in MODELS)
    print(f"total {total} bytes")
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"the fixtures take {total} bytes, more than the {MAX_TOTAL_BYTES} allowed")


if __name__ == "__main__":
    main()
