"""PyTorch's time to the first token: the prefill of a GPT of a given shape with SDPA, beside
`minitx bench decode --device cuda`'s "first token after" figure.

Usage (on the GPU machine): python3 scripts/peers/prefill_peer.py [--tokens 1024] [--reps 20] [--output FILE.csv]

For each of issue 12's shapes (GPT-2-style blocks: learned positions, LayerNorm, tanh GELU, tied
head; vocabulary 50,304 as in ../shared/peers/torch_decode_peer.py) in fp16 and bf16: one forward
over the prompt with F.scaled_dot_product_attention(is_causal=True) (FlashAttention where
available), the logits of the last position only, then the argmax: what a server does before the
first token. Timed with CUDA events, median of --reps after three warm-ups, the same prompt each
time. Prints a table and writes CSV (shape, dtype, tokens, ms).
"""
import argparse, csv, os, statistics, sys
import torch
import torch.nn.functional as F

SHAPES = [("pythia-70m-shape", 50304, 6, 512, 8), ("gpt2-124m-shape", 50304, 12, 768, 12),
          ("gpt2-350m-shape", 50304, 24, 1024, 16)]


def build(V, L, d, h, T, dtype, dev):
    g = torch.Generator(device=dev).manual_seed(0)
    r = lambda *shape: (torch.randn(*shape, device=dev, generator=g) * 0.02).to(dtype)
    ones = lambda: torch.ones(d, device=dev, dtype=dtype)
    zeros = lambda: torch.zeros(d, device=dev, dtype=dtype)
    layers = [dict(ln1=(ones(), zeros()), qkv=(r(3 * d, d), r(3 * d)), proj=(r(d, d), r(d)), ln2=(ones(), zeros()),
                   fc=(r(4 * d, d), r(4 * d)), fc2=(r(d, 4 * d), r(d))) for _ in range(L)]
    return dict(wte=r(V, d), wpe=r(T, d), layers=layers, lnf=(ones(), zeros()), h=h, d=d)


def prefill(m, ids):
    T, d, h = ids.shape[1], m["d"], m["h"]
    x = m["wte"][ids] + m["wpe"][:T]
    for l in m["layers"]:
        a = F.layer_norm(x, (d,), *l["ln1"])
        q, k, v = F.linear(a, *l["qkv"]).view(1, T, 3, h, d // h).unbind(2)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + F.linear(y.transpose(1, 2).reshape(1, T, d), *l["proj"])
        a = F.layer_norm(x, (d,), *l["ln2"])
        x = x + F.linear(F.gelu(F.linear(a, *l["fc"]), approximate="tanh"), *l["fc2"])
    last = F.layer_norm(x[:, -1], (d,), *m["lnf"])
    return F.linear(last, m["wte"]).argmax(-1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tokens", type=int, default=1024)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--output")
    a = p.parse_args()
    dev = "cuda"
    rows = []
    with torch.no_grad():
        for name, V, L, d, h in SHAPES:
            for dtype in (torch.float16, torch.bfloat16):
                m = build(V, L, d, h, a.tokens, dtype, dev)
                ids = torch.randint(0, V, (1, a.tokens), device=dev, generator=torch.Generator(device=dev).manual_seed(1))
                for _ in range(3):
                    prefill(m, ids)
                times = []
                for _ in range(a.reps):
                    s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    s.record()
                    prefill(m, ids)
                    e.record()
                    torch.cuda.synchronize()
                    times.append(s.elapsed_time(e))
                rows.append(dict(shape=name, dtype=str(dtype).split(".")[-1], tokens=a.tokens, ms=statistics.median(times)))
    print(f"{'shape':<18} {'dtype':<9} {'tokens':>6} {'prefill ms':>10}   ({torch.cuda.get_device_name(0)}, torch {torch.__version__})")
    for r in rows:
        print(f"{r['shape']:<18} {r['dtype']:<9} {r['tokens']:>6} {r['ms']:>10.3f}")
    if a.output:
        with open(a.output, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    sys.exit(main())
