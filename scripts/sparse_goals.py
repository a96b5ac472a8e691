"""Issue 11's goals read off one `make bench-sparse` CSV (minitx, SDPA and FlexAttention rows of
the same run): per pattern and T, ours against FlexAttention forward and forward+backward (goal
>= 1.3x); each pattern's kept-block throughput against our dense causal kernel's at T >= 4k (goal
>= 85%); local against SDPA's causal kernel at the longest T (goal >= 10x).

Usage: python3 scripts/sparse_goals.py out/bench_sparse.csv   (prints Markdown tables)
"""
import csv, sys

FLEX_GOAL, KEPT_GOAL, LOCAL_GOAL = 1.3, 0.85, 10.0


def main(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ours = {(r["pattern"], int(r["T"])): r for r in rows if r["impl"] == "minitx-cuda"}
    flex = {(r["pattern"], int(r["T"])): r for r in rows if r["impl"] == "flex"}
    sdpa = {int(r["T"]): r for r in rows if r["impl"] == "sdpa"}
    if not ours:
        sys.exit(f"{path}: no minitx-cuda rows (the goals are GPU figures)")
    patterns = list(dict.fromkeys(p for p, _ in ours))
    Ts = sorted({t for _, t in ours})
    ms = lambda r, k: float(r[k])
    fmt = lambda x: f"{x:.2f}×"

    print("| T | pattern | density | ours fwd / f+b ms | Flex fwd / f+b ms | ours ÷ Flex fwd | ours ÷ Flex f+b |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    misses = []
    for t in Ts:
        for p in patterns:
            o, x = ours.get((p, t)), flex.get((p, t))
            if o is None or x is None:
                continue
            rf, rb = ms(x, "fwd_ms") / ms(o, "fwd_ms"), ms(x, "fwdbwd_ms") / ms(o, "fwdbwd_ms")
            mark = lambda r: fmt(r) if r >= FLEX_GOAL else f"**{fmt(r)}**"
            if p != "causal" and (rf < FLEX_GOAL or rb < FLEX_GOAL):  # dense is held to SDPA, below
                misses.append(f"{p} at {t:,}")
            print(f"| {t:,} | {p} | {float(o['density']):.3f} | {ms(o, 'fwd_ms'):.3f} / {ms(o, 'fwdbwd_ms'):.3f} | "
                  f"{ms(x, 'fwd_ms'):.3f} / {ms(x, 'fwdbwd_ms'):.3f} | {mark(rf)} | {mark(rb)} |")
    print(f"\nPatterns below {FLEX_GOAL}× (bold; dense causal is a reference, its goal is SDPA's): "
          f"{', '.join(misses) if misses else 'none'}.\n")

    print("| pattern | kept-block TFLOP/s fwd ÷ dense causal's, T = " + " / ".join(f"{t:,}" for t in Ts if t >= 4096)
          + " | f+b |")
    print("| --- | ---: | ---: |")
    for p in patterns:
        if p == "causal":
            continue
        fw, fb = [], []
        for t in Ts:
            if t < 4096 or (p, t) not in ours or ("causal", t) not in ours:
                continue
            o, d = ours[(p, t)], ours[("causal", t)]
            fw.append(float(o["fwd_tflops"]) / float(d["fwd_tflops"]))
            fb.append(float(o["fwdbwd_tflops"]) / float(d["fwdbwd_tflops"]))
        pct = lambda xs: " / ".join(f"{100 * x:.0f}%" for x in xs)
        print(f"| {p} | {pct(fw)} | {pct(fb)} |")

    t = Ts[-1]
    if ("local", t) in ours and t in sdpa:
        o, s = ours[("local", t)], sdpa[t]
        rf, rb = ms(s, "fwd_ms") / ms(o, "fwd_ms"), ms(s, "fwdbwd_ms") / ms(o, "fwdbwd_ms")
        print(f"\nAt T = {t:,}, local {ms(o, 'fwd_ms'):.3f} / {ms(o, 'fwdbwd_ms'):.3f} ms against SDPA causal "
              f"{ms(s, 'fwd_ms'):.3f} / {ms(s, 'fwdbwd_ms'):.3f} ms: {fmt(rf)} / {fmt(rb)} faster (goal {LOCAL_GOAL:.0f}×).")
    dense = [(tt, ours[("causal", tt)], sdpa[tt]) for tt in Ts if ("causal", tt) in ours and tt in sdpa]
    if dense:
        print("Dense causal ÷ SDPA (speed), fwd / f+b: " + "; ".join(
            f"{tt:,}: {fmt(ms(s, 'fwd_ms') / ms(o, 'fwd_ms'))} / {fmt(ms(s, 'fwdbwd_ms') / ms(o, 'fwdbwd_ms'))}"
            for tt, o, s in dense) + ".")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
