"""Shared by the fuzz entry points: seed corpora, a deterministic byte mutator, a run loop.

Each ``fuzz_*.py`` defines ``seeds()`` and ``target(data)``; ``main`` runs ``--runs`` mutated
inputs from ``--seed`` (pure Python, reproducible) or, with ``--atheris``, hands ``target`` to
atheris (coverage-guided libFuzzer; ``pip install atheris``). Only ``AssayError`` may escape the
code under test; anything else is counted (and the first few printed with the input that
caused it). Peak RSS is printed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import resource
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from assay.errors import AssayError  # noqa: E402

_INTERESTING = [
    b"\x00",
    b"\xff",
    b"\x80",
    b" ",
    b"/",
    b"..",
    b"./",
    b"0",
    b"7",
    b"777777777777",
    b"ustar\x00",
    b"ustar  \x00",
    b"x",
    b"g",
    b"L",
    b"K",
    b"S",
    b"1",
    b"2",
    b"\n",
    b"=",
    b"99999999999 ",
]


def mutate(data: bytes, rng: random.Random, corpus: Sequence[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 5, 8))):
        op = rng.randrange(9)
        pos = rng.randrange(len(buf) + 1) if buf else 0
        if op == 0 and buf:  # flip a bit
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:  # random byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 2:  # insert a token
            buf[pos:pos] = rng.choice(_INTERESTING)
        elif op == 3 and buf:  # overwrite with a token
            tok = rng.choice(_INTERESTING)
            buf[pos : pos + len(tok)] = tok
        elif op == 4 and buf:  # truncate
            del buf[rng.randrange(len(buf)) :]
        elif op == 5 and len(buf) > 2:  # delete a range
            a = rng.randrange(len(buf))
            del buf[a : a + rng.randrange(1, 64)]
        elif op == 6 and buf:  # duplicate a 512-byte-aligned block
            blocks = max(1, len(buf) // 512)
            b = rng.randrange(blocks) * 512
            buf[pos - pos % 512 : pos - pos % 512] = buf[b : b + 512]
        elif op == 7:  # splice another seed
            other = rng.choice(corpus)
            if other:
                a = rng.randrange(len(other))
                buf[pos:pos] = other[a : a + rng.randrange(1, 1024)]
        elif op == 8 and len(buf) >= 160:  # a header field set to an octal/decimal number
            field = rng.choice(((100, 8), (108, 8), (124, 12), (136, 12), (148, 8)))
            start = (rng.randrange(max(1, len(buf) // 512)) * 512) + field[0]
            value = b"%0*o\x00" % (field[1] - 1, rng.randrange(8 ** (field[1] - 1)))
            buf[start : start + field[1]] = value[: field[1]]
    return bytes(buf[: 1 << 20])


def main(name: str, seeds: Callable[[], list[bytes]], target: Callable[[bytes], None]) -> int:
    ap = argparse.ArgumentParser(description=f"fuzz {name}")
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--atheris", action="store_true", help="coverage-guided (needs atheris)")
    ap.add_argument("--show", type=int, default=3, help="print this many failures in full")
    args, rest = ap.parse_known_args()
    corpus = seeds()

    def guarded(data: bytes) -> None:
        with contextlib.suppress(AssayError):
            target(data)

    if args.atheris:
        import atheris

        atheris.instrument_all()
        atheris.Setup([sys.argv[0], f"-runs={args.runs}", f"-seed={args.seed}", *rest], guarded)
        atheris.Fuzz()
        return 0
    rng = random.Random(args.seed)
    failures = 0
    kinds: dict[str, int] = {}
    start = time.monotonic()
    for i in range(args.runs):
        if i and i % 50_000 == 0:
            print(f"{name}: {i} executions, {failures} unexpected exceptions", flush=True)
        base = corpus[i % len(corpus)] if i < len(corpus) else rng.choice(corpus)
        data = base if i < len(corpus) else mutate(base, rng, corpus)
        try:
            target(data)
        except AssayError:
            continue
        except Exception as exc:
            failures += 1
            key = f"{type(exc).__name__}: {str(exc)[:80]}"
            kinds[key] = kinds.get(key, 0) + 1
            if failures <= args.show:
                print(f"--- run {i}: {key}\ninput (first 200 bytes): {data[:200]!r}")
                traceback.print_exc()
    took = time.monotonic() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"{name}: {args.runs} executions (seed {args.seed}) in {took:.1f}s "
        f"({args.runs / max(took, 1e-9):.0f}/s), {failures} unexpected exceptions, "
        f"peak RSS {rss} MiB"
    )
    for key, count in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print(f"  {count:6}  {key}")
    return 1 if failures else 0
