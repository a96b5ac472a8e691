#!/usr/bin/env python3
"""Makes the Hugging Face reference fixtures in tests/fixtures/hf/ (run where `tokenizers` is
installed; they were made with tokenizers 0.23.2 on the H100 machine).

Usage: python3 scripts/make_hf_fixtures.py MOBY_DICK.txt OUTDIR

Writes to OUTDIR:
  moby_slice.txt        the corpus slice: the first 150000 bytes of moby-dick, extended to a newline
  hf_512.json, hf_1024.json
                        BpeTrainer output on the slice (ByteLevel, special <|endoftext|>,
                        min_frequency 0, the 256 byte symbols as initial alphabet)
  hf_gpt4_1000.json     the same with the GPT-4 split: Sequence [Split(GPT4, isolated),
                        ByteLevel(use_regex=False)], vocab 1000
  ids.json              texts and their ids under both tokenizers
  classes.txt           for every code point, the class that the GPT-2 pattern sees:
                        L (\\p{L}), N (\\p{N}), S (\\s) or O (anything else), as ranges
  splits.json           seeded random texts and their pre-token lengths (in code points) under
                        the GPT-2 ByteLevel pre-tokenizer and under the GPT-4 pattern (Split, isolated)
"""
import json
import multiprocessing
import os
import random
import sys

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
import tokenizers

GPT4 = (r"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"
        r"|\s*[\r\n]|\s+(?!\S)|\s+")


def train(text, vocab, gpt4=False):
    tok = Tokenizer(models.BPE())
    if gpt4:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(GPT4), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab, min_frequency=0, special_tokens=["<|endoftext|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([text], trainer=tr)
    return tok


def classify_range(bounds):
    lo, hi = bounds
    pt = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    out = []
    for cp in range(lo, hi):
        if 0xD800 <= cp < 0xE000:
            out.append("O")  # surrogates can't be in a str that reaches Rust
            continue
        c = chr(cp)
        if len(pt.pre_tokenize_str("a" + c)) == 1:
            out.append("L")
        elif len(pt.pre_tokenize_str("1" + c)) == 1:
            out.append("N")
        elif len(pt.pre_tokenize_str("!" + c)) == 1:
            out.append("O")
        else:
            out.append("S")
    return "".join(out)


def random_text(rng):
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "0123456789",
        "     ", "\t\n\r\x0b\x0c", "''''", ".,;:!?-_()[]{}\"/\\@#$%^&*+=<>|~`",
        "éßЖжΩ中文ひらカナ한글ñÆøǅʰ",  # letters, incl. title case and modifier
        "٣२²½ⅫⅧ𝟙",  # Nd, No, Nl
        "\u00a0\u2003\u3000\u0085\u1680\u2028\u2029\u202f\u205f\u180e\u200b\u2060\ufeff",
        "\u0301\u0308\u20dd",  # combining marks
        "😀🎉🇺🇸—“”’…€",
    ]
    contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D", "'M"]
    n = rng.randint(1, 48)
    out = []
    while len(out) < n:
        r = rng.random()
        if r < 0.08:
            out.extend(rng.choice(contractions))
        elif r < 0.12:
            cp = rng.randint(0, 0x10FFFF)
            if 0xD800 <= cp < 0xE000:
                continue
            out.append(chr(cp))
        else:
            pool = rng.choice(pools)
            out.append(rng.choice(pool))
    return "".join(out)


def main():
    moby, outdir = sys.argv[1], sys.argv[2]
    os.makedirs(outdir, exist_ok=True)
    data = open(moby, "rb").read()
    n = 150000
    while data[n - 1:n] != b"\n":
        n += 1
    slice_bytes = data[:n]
    open(os.path.join(outdir, "moby_slice.txt"), "wb").write(slice_bytes)
    text = slice_bytes.decode("utf-8")

    samples = [
        data[600000:601200].decode("utf-8", errors="ignore"),
        "Call me Ishmael. Some years ago—never mind how long precisely—having little or no money",
        "It's 1851; they'll say \"we've 3.14159 whales\" and I'd think   you're\tright.\n\n\n  Done!",
        "Ünïcödé: naïve café, Straße, Москва, 東京, 🐋🐳 and \u00a0non-breaking\u3000spaces.",
        "   leading and trailing   \n",
        "",
    ]
    ids = {"tokenizers_version": tokenizers.__version__, "texts": samples}
    for vocab in (512, 1024):
        tok = train(text, vocab)
        tok.save(os.path.join(outdir, f"hf_{vocab}.json"))
        ids[f"ids_{vocab}"] = [tok.encode(s).ids for s in samples]
        ids[f"slice_tokens_{vocab}"] = len(tok.encode(text).ids)
        ids[f"slice_sha_ids_{vocab}"] = __import__("hashlib").sha256(
            b"".join(i.to_bytes(4, "little") for i in tok.encode(text).ids)).hexdigest()
    train(text, 1000, gpt4=True).save(os.path.join(outdir, "hf_gpt4_1000.json"))
    with open(os.path.join(outdir, "ids.json"), "w", encoding="utf-8") as f:
        json.dump(ids, f, ensure_ascii=False, indent=1)

    rng = random.Random(20261122)
    gpt2 = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    gpt4 = pre_tokenizers.Split(Regex(GPT4), behavior="isolated", invert=False)
    cases = []
    for _ in range(1500):
        t = random_text(rng)
        a = [len(p) for p, _ in gpt2.pre_tokenize_str(t)]  # one byte-level char per byte
        b = [len(p.encode("utf-8")) for p, _ in gpt4.pre_tokenize_str(t)]
        cases.append({"text": t, "gpt2": a, "gpt4": b})
    with open(os.path.join(outdir, "splits.json"), "w", encoding="utf-8") as f:
        f.write('{"tokenizers_version": %s, "gpt4_pattern": %s, "cases": [\n'
                % (json.dumps(tokenizers.__version__), json.dumps(GPT4)))
        f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases))
        f.write("\n]}\n")

    step = 0x11000
    with multiprocessing.Pool(16) as pool:
        parts = pool.map(classify_range, [(lo, min(lo + step, 0x110000)) for lo in range(0, 0x110000, step)])
    classes = "".join(parts)
    with open(os.path.join(outdir, "classes.txt"), "w") as f:
        f.write(f"# GPT-2 pattern classes per code point, tokenizers {tokenizers.__version__}: first last class\n")
        start = 0
        for cp in range(1, 0x110001):
            if cp == 0x110000 or classes[cp] != classes[start]:
                f.write(f"{start:X} {cp - 1:X} {classes[start]}\n")
                start = cp


if __name__ == "__main__":
    main()
