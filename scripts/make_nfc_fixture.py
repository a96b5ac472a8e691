#!/usr/bin/env python3
"""Writes tests/fixtures/nfc/cases.txt: inputs and their NFC normalization by Python's
unicodedata, one case per line as "<input code points> ; <NFC code points>" (hex). Covers every
code point that has a canonical decomposition or may change under NFC, every primary composite
rebuilt from its parts (also with marks in between), Hangul syllables and jamo, and random
mixes of starters and combining marks of many classes. Deterministic (fixed seed).
Usage: python3 scripts/make_nfc_fixture.py > tests/fixtures/nfc/cases.txt"""
import random
import unicodedata

print(f"# NFC by Python unicodedata, Unicode {unicodedata.unidata_version}; scripts/make_nfc_fixture.py")
rng = random.Random(20261122)
cases = []
interesting = []
for cp in range(0x110000):
    if 0xD800 <= cp < 0xE000:
        continue
    c = chr(cp)
    if unicodedata.decomposition(c) or unicodedata.combining(c) or unicodedata.normalize("NFC", c) != c:
        interesting.append(cp)
        cases.append([cp])
marks = [cp for cp in interesting if unicodedata.combining(chr(cp))]
starters = [cp for cp in interesting if not unicodedata.combining(chr(cp))]
for cp in range(0x110000):
    if 0xD800 <= cp < 0xE000:
        continue
    d = unicodedata.decomposition(chr(cp))
    if d and not d.startswith("<"):
        parts = [int(x, 16) for x in d.split()]
        cases.append(parts)
        if len(parts) == 2:
            cases.append([parts[0], rng.choice(marks), parts[1]])
            cases.append([parts[0], parts[1], rng.choice(marks)])
for _ in range(400):  # Hangul: syllables, their jamo, and jamo runs
    s = rng.randrange(0xAC00, 0xD7A4)
    cases.append([ord(x) for x in unicodedata.normalize("NFD", chr(s))])
    cases.append([rng.randrange(0x1100, 0x1113), rng.randrange(0x1161, 0x1176), rng.randrange(0x11A7, 0x11C3)])
    cases.append([s, rng.randrange(0x11A7, 0x11C3)])
pool = [0x41, 0x61, 0x65, 0x6F, 0x55, 0x20] + [0x300, 0x301, 0x302, 0x308, 0x323, 0x327, 0x328, 0x331, 0x345, 0x5B4, 0x93C]
for _ in range(4000):
    n = rng.randrange(1, 9)
    cases.append([rng.choice(pool + starters[:400] + marks) if rng.random() < 0.5 else rng.choice(pool) for _ in range(n)])
for case in cases:
    out = [ord(x) for x in unicodedata.normalize("NFC", "".join(chr(c) for c in case))]
    print(" ".join(f"{c:X}" for c in case), ";", " ".join(f"{c:X}" for c in out))
