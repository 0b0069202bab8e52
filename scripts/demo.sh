#!/usr/bin/env bash
# The main job, end to end: install assay, build the python example image from the Debian
# mirror in your apt sources, and show the image and its evidence (SBOM, provenance), then run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -x .venv/bin/assay ]; then export PATH="$PWD/.venv/bin:$PATH"; fi
out=${ASSAY_DEMO_OUT:-./out}
echo "== assay build examples/python.yaml --output oci:$out:python" >&2
assay build examples/python.yaml --output "oci:$out:python"
echo "== assay inspect oci:$out:python" >&2
assay inspect "oci:$out:python"
echo "== the SBOM (SPDX 2.3, CycloneDX 1.6) and SLSA provenance written beside the image" >&2
ls -l "$out"/sbom-*.json "$out"/provenance-*.json
assay sbom "oci:$out:python" -o table | head -25
python3 - "$out/provenance-amd64.json" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
p = st["predicate"]
deps = p["buildDefinition"]["resolvedDependencies"]
print(f"provenance: {st['predicateType']}  builder {p['runDetails']['builder']['id']}")
print(f"  subject: " + ", ".join(f"{s['name']} sha256:{s['digest']['sha256'][:12]}…" for s in st["subject"]))
print(f"  resolvedDependencies: {sum(d['annotations']['kind'] == 'deb' for d in deps)} .debs, "
      f"{sum(d['annotations']['kind'] == 'release' for d in deps)} Release files")
PY
if [ "$(id -u)" = 0 ] && command -v runc >/dev/null; then
  echo "== assay run oci:$out:python -- -c 'import ssl, json; print(ssl.OPENSSL_VERSION)'" >&2
  assay run "oci:$out:python" -- -c 'import ssl, json; print(ssl.OPENSSL_VERSION)'
fi
