#!/usr/bin/env python3
"""Full-size import check (issue 9): a Pythia-70M-shaped and an OPT-125M-shaped model made by
transformers with random weights (norms and biases moved off their init), imported by minitx,
and the logits of both compared at every position of a 64-token sequence.

Usage (on the GPU machine, where transformers is installed):
    python3 scripts/check_full_size_import.py MINITX WORKDIR
Prints one line per model: the largest |difference| relative to the largest |logit|, and fails
(exit 1) above 1e-4. Runs on the CPU in fp32.
"""
import subprocess
import sys

import torch
from transformers import AutoModelForCausalLM, GPTNeoXConfig, OPTConfig

MINITX, WORK = sys.argv[1], sys.argv[2]
torch.manual_seed(7)
torch.set_num_threads(8)


def pythia70m():
    common = dict(vocab_size=50304, hidden_size=512, num_hidden_layers=6, num_attention_heads=8,
                  intermediate_size=2048, hidden_act="gelu", use_parallel_residual=True,
                  max_position_embeddings=2048, tie_word_embeddings=False, initializer_range=0.02)
    try:
        return GPTNeoXConfig(rotary_pct=0.25, rotary_emb_base=10000, **common)
    except TypeError:
        return GPTNeoXConfig(rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                              "partial_rotary_factor": 0.25}, **common)


def opt125m():
    return OPTConfig(vocab_size=50272, hidden_size=768, word_embed_proj_dim=768, num_hidden_layers=12,
                     ffn_dim=3072, num_attention_heads=12, activation_function="relu",
                     max_position_embeddings=2048, do_layer_norm_before=True, enable_bias=True,
                     tie_word_embeddings=True, init_std=0.02)


failed = False
for name, make in (("pythia-70m", pythia70m), ("opt-125m", opt125m)):
    model = AutoModelForCausalLM.from_config(make()).float().eval()
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.LayerNorm):
                mod.weight.add_(torch.randn_like(mod.weight) * 0.1)
                mod.bias.add_(torch.randn_like(mod.bias) * 0.1)
        for pname, p in model.named_parameters():
            if pname.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    out = f"{WORK}/{name}"
    model.save_pretrained(out, safe_serialization=True)
    ids = torch.randint(0, 50000, (64,)).tolist()
    with torch.no_grad():
        x = torch.tensor([ids])
        ref = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False).logits[0].double()
    subprocess.run([MINITX, "import", "--from", out, "--output", f"{out}.ckpt"], check=True)
    subprocess.run([MINITX, "logits", "--model", f"{out}.ckpt", "--ids", ",".join(map(str, ids)),
                    "--output", f"{out}.csv"], check=True)
    rows = [line.split(",") for line in open(f"{out}.csv").read().splitlines()[1:]]
    ours = torch.tensor([[float(v) for v in row[2:]] for row in rows], dtype=torch.float64)
    diff = (ours - ref).abs().max().item()
    scale = ref.abs().max().item()
    ok = diff / scale <= 1e-4
    failed |= not ok
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, {len(ids)} positions: "
          f"max |diff| {diff:.3e}, max |logit| {scale:.3e}, relative {diff / scale:.3e} -> {'ok' if ok else 'FAILED'}",
          flush=True)
sys.exit(1 if failed else 0)
