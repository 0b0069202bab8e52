"""Fuzz campaign over assay's document parsers (pure-Python mutator; no atheris needed).

    PYTHONPATH=src nice -n 19 python3 fuzz/fuzz_docs.py --target openvex --runs 1000000 --seed 1
    PYTHONPATH=src python3 fuzz/fuzz_docs.py --list
    PYTHONPATH=src nice -n 19 python3 fuzz/fuzz_docs.py --target all --runs 20000 --seed 1
    PYTHONPATH=src nice -n 19 python3 fuzz/fuzz_docs.py --target all --runs 1000000 --jobs 4

Each execution mutates a seed (or an earlier input) and runs the target. ``AssayError`` is the
expected way to refuse an input; any other exception is a finding: it is printed with its
traceback's last frame and the input is saved under ``fuzz/findings/TARGET-N.bin``. The summary
line per target gives executions, accepted inputs, refusals and unexpected exceptions; the last
line ("fuzz_docs summary: …") sums the campaign up for the issue note. ``--jobs N`` runs targets
in N processes (a single target's runs split among them, seeds SEED, SEED+1, …).

Mutations: JSON-aware ones on inputs that parse (replace a value by one of another type, a huge
integer, a deep nest, a long string, a control character; drop or duplicate a key; swap in a
value from elsewhere in the document), and byte-level ones on everything (flip, insert, delete,
splice interesting tokens).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from targets import Target, all_targets

from assay.errors import AssayError

_TOKENS = [
    b"[",
    b"]",
    b"{",
    b"}",
    b'"',
    b"\\",
    b":",
    b",",
    b"null",
    b"true",
    b"-0",
    b"1e400",
    b"NaN",
    b"9" * 50,
    b"\\ud800",
    b"\x00",
    b"\x1b[31m",
    b"&a",
    b"*a",
    b"!!python/object:os.system",
    b"\xff",
    b"\n- ",
    b"@",
    b":@abc",
]


_STOPPED: list[bool] = []


def _say(line: str) -> None:
    """One line in one write: lines from parallel workers never interleave (PIPE_BUF)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


_MAX_KEPT = 8 << 10


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(14)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, -1, 1, 2**63, -(2**63) - 1, 2**64, rng.randrange(-1000, 1000)])
    if kind == 3:
        return int("9" * rng.choice([39, 40, 41, 300, 5000]))
    if kind == 4:
        return rng.choice([0.5, -1.5, 1e308, 1e-308, 3.0])
    if kind == 5:
        return rng.choice(["", "x", "sha256:" + "a" * 64, "../../etc/passwd", "pkg:deb/x@1"])
    if kind == 6:
        return "".join(chr(rng.randrange(0, 0x110000)) for _ in range(rng.randrange(1, 8)))
    if kind == 7:
        return "x" * rng.choice([100, 5000, 200_000])
    if kind == 8:
        return "\x1b]0;t\x07\x1b[2J\r\u202e"
    if kind == 9 and depth < 3:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    if kind == 10 and depth < 3:
        return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randrange(0, 4))}
    if kind == 11:
        nest: Any = 1
        for _ in range(rng.choice([10, 127, 129, 500, 3000])):
            nest = [nest]
        return nest
    if kind == 12:
        return []
    return {}


def _nodes(doc: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    stack = [(doc, path)]
    while stack and len(out) < 5000:
        node, p = stack.pop()
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for k, v in items:
            out.append((*p, k))
            stack.append((v, (*p, k)))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


def _json_mutate(doc: Any, rng: random.Random) -> Any:
    paths = _nodes(doc)
    path = rng.choice(paths)
    op = rng.randrange(5)
    if not path:
        return _random_value(rng) if op == 0 else doc
    parent = _get(doc, path[:-1])
    key = path[-1]
    if op <= 1:
        parent[key] = _random_value(rng)
    elif op == 2 and isinstance(parent, dict):
        del parent[key]
    elif op == 3:
        other = _get(doc, rng.choice(paths))
        try:
            parent[key] = json.loads(json.dumps(other))
        except (RecursionError, ValueError):
            parent[key] = None
    elif isinstance(parent, list):
        parent.insert(key, _random_value(rng))
    else:
        parent[f"{key}_"] = _random_value(rng)
    return doc


def _byte_mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(4)
        pos = rng.randrange(len(buf) + 1)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 1:
            buf[pos:pos] = rng.choice(_TOKENS)
        elif op == 2 and buf:
            end = min(len(buf), pos + rng.randrange(1, 16))
            del buf[pos:end]
        else:
            buf[pos:pos] = bytes(rng.choice(_TOKENS)) * rng.randrange(1, 200)
    return bytes(buf)


def mutate(data: bytes, rng: random.Random) -> bytes:
    if rng.random() < 0.6:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):
            doc = None
        if doc is not None:
            try:
                return json.dumps(_json_mutate(doc, rng), ensure_ascii=rng.random() < 0.5).encode(
                    "utf-8", "surrogatepass"
                )
            except (RecursionError, ValueError, TypeError):
                pass
    return _byte_mutate(data, rng)


def campaign(
    target: Target,
    runs: int,
    seed: int,
    findings: Path,
    quiet: bool = False,
    seconds: float = 0.0,
) -> dict[str, int]:
    """Run ``target`` ``runs`` times (or until ``seconds`` pass, or SIGTERM/Ctrl-C)."""
    rng = random.Random(seed)
    corpus = list(target.seeds)
    counts = {"executions": 0, "accepted": 0, "refused": 0, "unexpected": 0}
    seen: set[str] = set()
    started = time.monotonic()
    try:
        _loop(target, runs, rng, corpus, counts, seen, findings, started, seconds)
    except KeyboardInterrupt:
        _say(f"{target.name}: interrupted")
        _STOPPED.append(True)
    elapsed = time.monotonic() - started
    if not quiet:
        _say(
            f"{target.name}: {counts['executions']} executions in {elapsed:.0f} s "
            f"({counts['executions'] / max(elapsed, 1e-9):.0f}/s), {counts['accepted']} accepted, "
            f"{counts['refused']} refused (AssayError), {counts['unexpected']} unexpected "
            f"({len(seen)} distinct)"
        )
    return counts


def _loop(
    target: Target,
    runs: int,
    rng: random.Random,
    corpus: list[bytes],
    counts: dict[str, int],
    seen: set[str],
    findings: Path,
    started: float,
    seconds: float,
) -> None:
    for n in range(runs):
        if seconds and n % 256 == 0 and time.monotonic() - started > seconds:
            _say(f"{target.name}: time budget of {seconds:g} s used")
            return
        data = mutate(rng.choice(corpus), rng)
        if len(data) > (1 << 20):
            data = data[: 1 << 20]
        counts["executions"] += 1
        try:
            target.run(data)
        except AssayError:
            counts["refused"] += 1
            continue
        except Exception as exc:  # a finding
            counts["unexpected"] += 1
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
            if where not in seen:
                seen.add(where)
                findings.mkdir(parents=True, exist_ok=True)
                out = findings / f"{target.name}-{len(seen)}.bin"
                out.write_bytes(data)
                _say(f"  {target.name}: {where}: {str(exc)[:120]!r} (input: {out})")
            continue
        counts["accepted"] += 1
        if len(corpus) < 64 and len(data) <= _MAX_KEPT and rng.random() < 0.05:
            # Keep some accepted variants as new starting points, but only small ones: a kept
            # 200 KB string made every later execution a 200 KB parse (and a 200 KB mutation),
            # a 3-5x slowdown spent on size rather than on shapes. Large values still come from
            # the mutations themselves, one execution at a time.
            corpus.append(data)


def _shard(job: tuple[str, int, int, Path, float]) -> tuple[str, dict[str, int], float]:
    """One process's part of a campaign: (target, its counts, seconds it ran)."""
    name, runs, seed, findings, seconds = job
    logging.disable(logging.CRITICAL)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    started = time.monotonic()
    counts = campaign(all_targets()[name], runs, seed, findings, seconds=seconds)
    return name, counts, time.monotonic() - started


def _jobs(names: list[str], runs: int, seed: int, jobs: int) -> list[tuple[str, int, int]]:
    """(target, runs, seed) per process: a target gets several processes (seeds SEED, SEED+1, …)
    when there are more processes than targets."""
    shards = max(1, jobs // len(names))
    out = []
    for name in names:
        for k in range(shards):
            part = runs // shards + (1 if k < runs % shards else 0)
            if part:
                out.append((name, part, seed + k))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="all", help="a target name, or 'all'")
    parser.add_argument("--runs", type=int, default=10_000, help="executions per target")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--seconds", type=float, default=0.0, help="time budget per target (0: none)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="processes to run targets in parallel; with more processes than targets, each "
        "target's runs are split among several (seeds SEED, SEED+1, …)",
    )
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--findings", type=Path, default=Path(__file__).parent / "findings")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the "skipping …" warnings would flood the terminal
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # print the counts when stopped
    targets = all_targets()
    if args.list:
        _say("\n".join(sorted(targets)))
        return 0
    names = sorted(targets) if args.target == "all" else args.target.split(",")
    unknown = [n for n in names if n not in targets]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r}; --list shows them")
    started = time.monotonic()
    totals: dict[str, dict[str, int]] = {n: dict.fromkeys(_COUNTS, 0) for n in names}
    jobs = _jobs(names, args.runs, args.seed, max(1, args.jobs))
    if args.jobs <= 1:
        for name, runs, seed in jobs:
            if _STOPPED:
                break
            found = campaign(targets[name], runs, seed, args.findings, seconds=args.seconds)
            _add(totals[name], found)
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(_shard, (name, runs, seed, args.findings, args.seconds))
                for name, runs, seed in jobs
            ]
            try:
                for fut in as_completed(futures):
                    name, found, _ = fut.result()
                    _add(totals[name], found)
            except KeyboardInterrupt:  # the workers print their own counts as they stop
                _STOPPED.append(True)
                pool.shutdown(wait=True, cancel_futures=True)
                for fut in futures:
                    if fut.done() and not fut.cancelled() and fut.exception() is None:
                        name, found, _ = fut.result()
                        _add(totals[name], found)
        for name in names:
            if sum(1 for j in jobs if j[0] == name) > 1:
                c = totals[name]
                _say(
                    f"{name}: {c['executions']} executions in all, {c['accepted']} accepted, "
                    f"{c['refused']} refused, {c['unexpected']} unexpected"
                )
    _say(_summary(totals, time.monotonic() - started, args))
    return 1 if any(c["unexpected"] for c in totals.values()) else 0


_COUNTS = ("executions", "accepted", "refused", "unexpected")


def _add(into: dict[str, int], counts: dict[str, int]) -> None:
    for key in _COUNTS:
        into[key] += counts.get(key, 0)


def _summary(totals: dict[str, dict[str, int]], elapsed: float, args: argparse.Namespace) -> str:
    """One line for the issue note: the command's shape, per-target executions, the verdict."""
    per = " ".join(f"{n}={c['executions']}" for n, c in sorted(totals.items()))
    execs = [c["executions"] for c in totals.values()]
    unexpected = sum(c["unexpected"] for c in totals.values())
    return (
        f"fuzz_docs summary: {len(totals)} targets, seed {args.seed}, {args.jobs} job(s), "
        f"{sum(execs)} executions in {elapsed:.0f} s (min {min(execs, default=0)} per target), "
        f"{unexpected} unexpected exceptions; {per}"
    )


if __name__ == "__main__":
    sys.exit(main())
