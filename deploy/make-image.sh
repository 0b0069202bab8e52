#!/bin/sh
# Build assay's own image (deploy/assay.yaml) from the committed state of this checkout.
#
#   deploy/make-image.sh [DEST] [more `assay build` options, e.g. --push REG/assay:TAG]
#
# DEST defaults to oci:out/assay-image:VERSION. Steps: build assay's wheel reproducibly
# (`git archive HEAD`, SOURCE_DATE_EPOCH = the commit's time, umask 022) into deploy/wheels/;
# write deploy/requirements-image.txt = requirements.txt + that wheel's SHA-256; lock when the
# pins changed (deploy/assay.lock.json); build. Same commit and same lock: same digest.
# Needs git, pip, setuptools and wheel (`pip install -e .[test]` has them) and assay itself.
# ASSAY_DEPLOY_WORK=DIR: work there instead of in deploy/ (the spec and requirements.txt are
# copied into it; the wheel, requirements-image.txt and the lock are written there).
set -eu
deploy=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$deploy")
here=${ASSAY_DEPLOY_WORK:-$deploy}
if [ "$here" != "$deploy" ]; then
    mkdir -p "$here"
    cp "$deploy/assay.yaml" "$deploy/requirements.txt" "$here/"
fi
assay=${ASSAY:-assay}
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct)}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml" | head -n 1)
dest=${1:-oci:$root/out/assay-image:$version}
[ $# -gt 0 ] && shift

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
git -C "$root" archive HEAD | tar -x -C "$tmp"
(
    cd "$tmp"
    umask 022
    SOURCE_DATE_EPOCH=$epoch python3 -m pip --isolated wheel --no-deps --no-build-isolation \
        --quiet --disable-pip-version-check -w "$tmp/dist" .
)
rm -rf "$here/wheels"
mkdir -p "$here/wheels"
cp "$tmp/dist/assay-$version-py3-none-any.whl" "$here/wheels/"
hash=$(sha256sum "$here/wheels/assay-$version-py3-none-any.whl" | cut -d' ' -f1)
{
    cat "$here/requirements.txt"
    printf 'assay==%s \\\n    --hash=sha256:%s\n' "$version" "$hash"
} >"$tmp/requirements-image.txt"
if ! cmp -s "$tmp/requirements-image.txt" "$here/requirements-image.txt" \
    || [ ! -f "$here/assay.lock.json" ]; then
    mv "$tmp/requirements-image.txt" "$here/requirements-image.txt"
    $assay lock "$here/assay.yaml"
fi
$assay build "$here/assay.yaml" --dest "$dest" "$@"
