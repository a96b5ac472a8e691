"""PyTorch's causal SDPA and FlexAttention on exactly the masks and shapes of `minitx bench attention`.

Usage (on the GPU machine, after `build/minitx bench attention --export-masks DIR ...`):
    python3 scripts/peers/attention_peer.py DIR [--heads 12] [--dim 64] [--tokens 16384] [--reps 30] [--output FILE.csv]

Reads every DIR/<pattern>_b<block>_T<T>.txt written by --export-masks (one line per query block:
"kb:kind ...", kind 0 full, 1 causal, 2 global; a line of global tokens; the header gives the
positions a decoder's KV cache keeps), hands FlexAttention the layout's own block lists
(BlockMask.from_kv_blocks: full blocks without a mask_mod, the partial ones with a causal
formula) at the same block size, and times
torch.compile'd flex_attention forward and forward+backward the way minitx does: CUDA events,
median of --reps after warm-up, inputs rotating over three sets. SDPA (is_causal=True,
FlashAttention backend where available) is timed once per T as the dense reference.
--tokens, --heads, --dim and --reps default to DIR/shape.txt, minitx's own run, so B = tokens/T,
H and D are the same. Prints the table and writes CSV with minitx's columns (impl "sdpa" or
"flex", device "cuda"), so the two files concatenate; the memory columns are minitx's formulas
for a fused kernel: saved = out (bf16) + lse (fp32), the KV cache in bf16, the kept score blocks
in fp32.
"""
import argparse, glob, math, os, re, sys
import torch
import torch.nn.functional as F


def read_layout(path):
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines[0] == "minitx-block-layout 2", f"{path}: not a minitx layout of version 2 (first line {lines[0]!r})"
    head = lines[1].split()
    assert head[0::2] == ["T", "block", "nb", "kv_positions"], f"{path}: header {lines[1]!r} is not 'T .. block .. nb .. kv_positions ..'"
    T, block, nb, kv_positions = int(head[1]), int(head[3]), int(head[5]), int(head[7])
    globals_ = [int(x) for x in lines[2].split()[1:]]
    kinds = torch.full((nb, nb), -1, dtype=torch.int8)
    for qb, line in enumerate(lines[3:3 + nb]):
        for item in line.split():
            kb, kind = item.split(":")
            kinds[qb, int(kb)] = int(kind)
    return T, block, kinds, globals_, kv_positions


def read_shape(masks):
    """minitx's tokens, heads, dim and reps, as --export-masks wrote them (empty when absent)."""
    path = os.path.join(masks, "shape.txt")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        lines = f.read().split("\n")
    assert lines[0] == "minitx-bench-shape 1", f"{path}: not a minitx shape file (first line {lines[0]!r})"
    return {k: int(v) for k, v in (line.split() for line in lines[1:] if line.strip())}


def block_mask_from_layout(BlockMask, kinds, glob_t, T, blk):
    """The layout handed to FlexAttention as its own block lists, in the cheapest form Flex takes:
    full blocks (kind 0) need no mask_mod at all; the partial ones (the diagonal, kind 1, and
    Longformer's global blocks, kind 2) a causal formula, with a lookup of the global tokens only
    where the layout has them. (A mask_mod that looks every block's kind up in a table instead
    costs Flex 2.2x on local at T = 4k, and ten times as much when it also reads the global
    tokens: measured on the H200, 2026-12-03.)"""
    nb = kinds.shape[0]
    rows = kinds.tolist()
    lists = {}
    for name, wanted in (("full", (0,)), ("partial", (1, 2))):
        num = torch.zeros(1, 1, nb, dtype=torch.int32)
        idx = torch.zeros(1, 1, nb, nb, dtype=torch.int32)
        for qb, row in enumerate(rows):
            cols = [kb for kb, kind in enumerate(row) if kind in wanted]
            num[0, 0, qb] = len(cols)
            if cols:
                idx[0, 0, qb, :len(cols)] = torch.tensor(cols, dtype=torch.int32)
        lists[name] = (num.cuda(), idx.cuda())
    if (kinds == 2).any():
        tbl = kinds.to("cuda")

        def mask_mod(b, h, qi, ki):
            return (qi >= ki) & ((tbl[qi // blk, ki // blk] != 2) | glob_t[qi] | glob_t[ki])
    else:
        def mask_mod(b, h, qi, ki):
            return qi >= ki
    return BlockMask.from_kv_blocks(lists["partial"][0], lists["partial"][1], lists["full"][0], lists["full"][1],
                                    BLOCK_SIZE=blk, mask_mod=mask_mod, seq_lengths=(T, T))


def bench(fn, reps, warm=3):
    for i in range(warm):
        fn(i)
    torch.cuda.synchronize()
    ts = []
    for i in range(reps):
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        s.record(); fn(i); e.record(); torch.cuda.synchronize()
        ts.append(s.elapsed_time(e))
    ts.sort()
    return ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("masks")
    ap.add_argument("--heads", type=int)
    ap.add_argument("--dim", type=int)
    ap.add_argument("--tokens", type=int)
    ap.add_argument("--reps", type=int)
    ap.add_argument("--output")
    a = ap.parse_args()
    shape = read_shape(a.masks)
    for key, fallback in (("heads", 12), ("dim", 64), ("tokens", 16384), ("reps", 30)):
        if getattr(a, key) is None:
            setattr(a, key, shape.get(key, fallback))

    from torch.nn.attention.flex_attention import flex_attention, BlockMask
    import torch._dynamo
    # Each (T, mask) compiles anew; the default limit would send later shapes to an eager fallback.
    torch._dynamo.config.cache_size_limit = 256
    if hasattr(torch._dynamo.config, "recompile_limit"):
        torch._dynamo.config.recompile_limit = 256
    flex = torch.compile(flex_attention)

    files = {}
    for path in sorted(glob.glob(os.path.join(a.masks, "*_b*_T*.txt"))):
        m = re.match(r"(.+)_b(\d+)_T(\d+)\.txt$", os.path.basename(path))
        files.setdefault((int(m.group(2)), int(m.group(3))), []).append((m.group(1), path))
    if not files:
        sys.exit(f"attention_peer: no layouts in {a.masks} (run minitx bench attention --export-masks first)")

    H, D = a.heads, a.dim
    rows = []
    header = ("pattern,impl,device,block,T,B,H,D,density,fwd_ms,fwdbwd_ms,fwd_tflops,fwdbwd_tflops,"
              "saved_bytes,kv_cache_bytes,scores_bytes")
    print(f"{'impl':<5} {'pattern':<13} {'block':>5} {'T':>6} {'B':>3} {'density':>7} {'fwd ms':>8} {'f+b ms':>9} {'fwd TF':>7} {'f+b TF':>7}")

    def emit(impl, name, block, T, B, dens, t, tb, kept, kv_positions):
        flops = 2.0 * B * H * T * T * D * dens  # kept work: the causal FLOPs times the density
        tf, tfb = flops / t / 1e9, 3.5 * flops / tb / 1e9
        saved = B * T * H * (2 * D + 4)  # out in bf16 and lse in fp32, as minitx's kernel
        kv = 2 * B * kv_positions * H * D * 2  # k and v in bf16
        scores = kept * block * block * 4 * B * H  # the kept score blocks in fp32
        rows.append(f"{name},{impl},cuda,{block},{T},{B},{H},{D},{dens:.4f},{t:.4f},{tb:.4f},{tf:.4f},{tfb:.4f},"
                    f"{saved},{kv},{scores}")
        print(f"{impl:<5} {name:<13} {block:>5} {T:>6} {B:>3} {dens:>7.3f} {t:>8.3f} {tb:>9.3f} {tf:>7.1f} {tfb:>7.1f}", flush=True)

    for (block, T), entries in sorted(files.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        B = max(1, a.tokens // T)
        sets = [[torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3)]
                for _ in range(3)]
        douts = [torch.randn(B, H, T, D, device="cuda", dtype=torch.bfloat16) for _ in range(3)]

        def sdpa_f(i):
            q, k, v = sets[i % 3]
            return F.scaled_dot_product_attention(q, k, v, is_causal=True)

        def sdpa_fb(i):
            sdpa_f(i).backward(douts[i % 3])

        nb = (T + block - 1) // block
        emit("sdpa", "causal", block, T, B, 1.0, bench(sdpa_f, a.reps), bench(sdpa_fb, a.reps), nb * (nb + 1) // 2, T)
        for name, path in entries:
            try:
                T2, blk, kinds, globals_, kv_positions = read_layout(path)
                assert T2 == T and blk == block, f"{path}: header disagrees with its name"
                glob_t = torch.zeros(T, dtype=torch.bool, device="cuda")
                if globals_:
                    glob_t[torch.tensor(globals_, device="cuda")] = True

                bm = block_mask_from_layout(BlockMask, kinds, glob_t, T, blk)
                nnz = int(bm.kv_num_blocks.sum().item() + bm.full_kv_num_blocks.sum().item())
                dens = nnz / (nb * (nb + 1) / 2)
                # The block lists must hold exactly the layout's kept blocks.
                kept = int((kinds >= 0).sum().item())
                assert kept == nnz, f"{name} T={T}: FlexAttention's block lists hold {nnz} blocks, the layout {kept}"

                def f(i, bm=bm):
                    q, k, v = sets[i % 3]
                    return flex(q, k, v, block_mask=bm)

                def fb(i, f=f):
                    f(i).backward(douts[i % 3])

                emit("flex", name, block, T, B, dens, bench(f, a.reps), bench(fb, a.reps), kept, kv_positions)
            except Exception as ex:  # one failing mask should not hide the others
                print(f"flex {name} T={T}: {type(ex).__name__}: {str(ex)[:300]}", file=sys.stderr)
        del sets, douts
        torch.cuda.empty_cache()

    text = header + "\n" + "".join(row + "\n" for row in rows)
    if a.output:  # under a temporary name, renamed into place once complete
        tmp = f"{a.output}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
