#!/bin/sh
# Regenerate deploy/requirements.txt: assay's runtime dependencies (pyproject.toml) resolved by pip
# for CPython 3.11 on Debian 12 (glibc 2.36) x86_64 and aarch64, wheels only, each distribution
# pinned to one version with the SHA-256 of the wheels downloaded for both architectures.
# Review the diff before committing it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
python3 - "$root/pyproject.toml" >"$tmp/deps.txt" <<'PY'
import sys, tomllib
for dep in tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]:
    print(dep)
PY
for m in x86_64 aarch64; do
    plats=""
    v=36
    while [ $v -ge 17 ]; do plats="$plats --platform manylinux_2_${v}_$m"; v=$((v - 1)); done
    plats="$plats --platform manylinux2014_$m"
    [ $m = x86_64 ] && plats="$plats --platform manylinux2010_$m --platform manylinux1_$m"
    # --isolated: PyPI only, whatever the local pip configuration says
    python3 -m pip --isolated download --quiet --only-binary=:all: $plats --python-version 3.11 \
        --implementation cp --abi cp311 --abi abi3 --abi none -d "$tmp/$m" -r "$tmp/deps.txt"
done
python3 - "$tmp" >"$tmp/requirements.txt" <<'PY'
import hashlib, os, sys
from packaging.utils import parse_wheel_filename
pins: dict[tuple[str, str], set[str]] = {}
for machine in ("x86_64", "aarch64"):
    folder = os.path.join(sys.argv[1], machine)
    for name in sorted(os.listdir(folder)):
        dist, version, _, _ = parse_wheel_filename(name)
        digest = hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
        pins.setdefault((str(dist), str(version)), set()).add(digest)
names = [n for n, _ in pins]
if len(set(names)) != len(names):
    sys.exit("pip chose different versions for x86_64 and aarch64: " + ", ".join(sorted(names)))
print("# assay's runtime dependencies for its own image (deploy/assay.yaml), hash-pinned: one line")
print("# per distribution, with the SHA-256 of its wheels for CPython 3.11 on linux x86_64 and")
print("# aarch64 (glibc 2.36, Debian 12). Regenerate with deploy/pin-requirements.sh after changing")
print("# the dependencies in pyproject.toml. assay's own wheel is pinned by deploy/make-image.sh.")
for (dist, version), digests in sorted(pins.items()):
    print(f"{dist}=={version}" + "".join(f" \\\n    --hash=sha256:{d}" for d in sorted(digests)))
PY
mv "$tmp/requirements.txt" "$here/requirements.txt"
echo "wrote $here/requirements.txt"
