"""The GPU's matrix-product rates as measured, not as the data sheet says: one large square product
in bf16 (fp32 accumulation, tensor cores) and in fp32 with TF32 off (the CUDA cores' ceiling),
through PyTorch's cuBLAS. MFU figures elsewhere are quoted beside these.

Usage (on the GPU machine): python3 scripts/peers/matrix_rate.py [--n 8192] [--reps 20] [--output FILE.json]
"""
import argparse
import json

import torch


def rate(dtype, n, reps):
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    for _ in range(3):
        torch.mm(a, b)
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        start.record()
        torch.mm(a, b)
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / 1e3)
    times.sort()
    return 2.0 * n ** 3 / times[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--output")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    result = {"device": torch.cuda.get_device_name(), "n": args.n,
              "bf16_tflops": rate(torch.bfloat16, args.n, args.reps) / 1e12,
              "fp32_tflops": rate(torch.float32, args.n, args.reps) / 1e12}
    print(f"matrix rate on {result['device']}, {args.n}^3, median of {args.reps}: "
          f"bf16 {result['bf16_tflops']:.1f} TFLOP/s, fp32 (no TF32) {result['fp32_tflops']:.1f} TFLOP/s")
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
