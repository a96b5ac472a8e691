#!/usr/bin/env python3
"""bench_generate_pairs.py RAWDIR [--csv]: OLD vs NEW `bench generate` figures from scripts/bench-generate-pairs.sh,
medians over the quiet pairs (both runs <= 0.15 foreign CPU-s/s) and a two-sided sign test; --csv prints one line per run."""
import csv, math, os, re, statistics, sys
R = sys.argv[1]; LIMIT = 0.15; AS_CSV = '--csv' in sys.argv[2:]
foreign = {row[0]: float(row[5]) for row in csv.reader(open(os.path.join(R, 'foreign.csv'))) if row[0] != 'tag'}
def figures(path):
    rows = {int(r['length']): r for r in csv.DictReader(open(path)) if r.get('device', 'cpu') == 'cpu'}
    out = {'cached ms/token, first 128': float(rows[128]['cached_ms_per_token']),
           'no cache ms/token, first 128': float(rows[128]['recompute_ms_per_token'])}
    if 1024 in rows:
        out.update({'cached ms/token, first 1024': float(rows[1024]['cached_ms_per_token']),
                    'no cache ms/token, first 1024': float(rows[1024]['recompute_ms_per_token']),
                    'speedup at 1024': float(rows[1024]['speedup'])})
    return {**out,
            **positions(path.replace('.csv', '_positions.csv'))}
def positions(path):
    c = [float(r['cached_ms']) for r in csv.DictReader(open(path)) if r.get('device', 'cpu') == 'cpu']
    return {'first token (prefill of the 1-token prompt), ms': c[0],
            'cached ms/token, positions 2..128 (steps only)': sum(c[1:128]) / 127,
            'median step ms, positions 2..128': statistics.median(c[1:128])}
rounds = sorted({int(m.group(1)) for f in os.listdir(R) if (m := re.match(r'generate_old_r(\d+)\.csv$', f))})
pairs, dropped = [], []
for r in rounds:
    if not os.path.exists(f'{R}/generate_new_r{r}.csv'): continue
    fo, fn = foreign[f'generate_old_r{r}'], foreign[f'generate_new_r{r}']
    (pairs if max(fo, fn) <= LIMIT else dropped).append((r, figures(f'{R}/generate_old_r{r}.csv'), figures(f'{R}/generate_new_r{r}.csv'), fo, fn))
def sign_p(up, down):
    n, k = up + down, min(up, down)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n) if n else 1.0
if AS_CSV:
    keys = list(figures(f'{R}/generate_old_r{rounds[0]}.csv'))
    short = {'cached ms/token, first 128': 'cached_ms_128', 'no cache ms/token, first 128': 'nocache_ms_128',
             'cached ms/token, first 1024': 'cached_ms_1024', 'no cache ms/token, first 1024': 'nocache_ms_1024',
             'speedup at 1024': 'speedup_1024', 'first token (prefill of the 1-token prompt), ms': 'first_token_ms',
             'cached ms/token, positions 2..128 (steps only)': 'steps_2_128_mean_ms', 'median step ms, positions 2..128': 'steps_2_128_median_ms'}
    print('round,build,foreign_cpu_per_s,quiet_pair,' + ','.join(short[k] for k in keys))
    for r, a, b, fo, fn in sorted(pairs + dropped):
        for t, f, fr in (('old', a, fo), ('new', b, fn)):
            print(f'{r},{t},{fr:.3f},{int(max(fo, fn) <= LIMIT)},' + ','.join(f'{f[k]:.4f}' for k in keys))
    sys.exit(0)
print(f'rounds {len(pairs) + len(dropped)}, quiet pairs {len(pairs)}, dropped {[(r, round(fo, 2), round(fn, 2)) for r, _, _, fo, fn in dropped]}')
print('| measurement [quiet/all] | OLD median (min–max) | NEW median (min–max) | NEW/OLD (medians) | per-pair NEW/OLD | sign test |')
print('| --- | ---: | ---: | ---: | ---: | --- |')
for key in pairs[0][1]:
    o = [p[1][key] for p in pairs]; n = [p[2][key] for p in pairs]; ratio = [b / a for a, b in zip(o, n)]
    up = sum(x > 1 for x in ratio); down = sum(x < 1 for x in ratio)
    print(f'| {key} [{len(pairs)}/{len(pairs) + len(dropped)}] | {statistics.median(o):.3f} ({min(o):.3f}–{max(o):.3f}) | '
          f'{statistics.median(n):.3f} ({min(n):.3f}–{max(n):.3f}) | **{statistics.median(n) / statistics.median(o):.3f}** | '
          f'{min(ratio):.3f}–{max(ratio):.3f} (median {statistics.median(ratio):.3f}) | {up} up / {down} down, p={sign_p(up, down):.3f} |')
print('\nper pair (round: old, new cached ms/token first 128; foreign old/new):')
for r, a, b, fo, fn in pairs + dropped:
    print(f'  r{r}: {a["cached ms/token, first 128"]:.4f} {b["cached ms/token, first 128"]:.4f}  first token: {a["first token (prefill of the 1-token prompt), ms"]:.3f} {b["first token (prefill of the 1-token prompt), ms"]:.3f}  foreign {fo:.3f}/{fn:.3f}')
