#!/usr/bin/env bash
# The main job, end to end: install assay, build the python example image from the Debian
# mirror in your apt sources, show the image and its evidence (SBOM, provenance), push it to a
# throw-away registry on 127.0.0.1 signed and attested, verify it against a policy, then run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ -x .venv/bin/assay ]; then export PATH="$PWD/.venv/bin:$PATH"; fi
out=${ASSAY_DEMO_OUT:-./out}
mkdir -p "$out"

echo "== assay build examples/python.yaml --dest oci:$out:python" >&2
assay build examples/python.yaml --dest "oci:$out:python" --force
echo "== assay inspect oci:$out:python" >&2
assay inspect "oci:$out:python"
echo "== the SBOMs (SPDX 2.3, CycloneDX 1.6) and SLSA provenance written beside the image" >&2
ls -l "$out"/*.spdx.json "$out"/*.cdx.json "$out"/*.provenance.json
assay sbom "oci:$out:python" -o table | head -25

# A registry of our own on 127.0.0.1 (Debian's docker-registry), gone when the demo ends.
port=${ASSAY_DEMO_PORT:-5055}
reg=$(mktemp -d)
cat > "$reg/config.yml" <<YML
version: 0.1
storage: {filesystem: {rootdirectory: $reg/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port}
YML
docker-registry serve "$reg/config.yml" >"$reg/log" 2>&1 &
regpid=$!
trap 'kill $regpid 2>/dev/null || true; rm -rf "$reg"' EXIT
for _ in $(seq 1 50); do
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/v2/')" 2>/dev/null && break
  sleep 0.2
done
ref="127.0.0.1:$port/demo/python:latest"

echo "== assay keygen; assay build … --push $ref --sign-key (push, sign, attest SBOMs + provenance)" >&2
rm -f "$out/demo.key" "$out/demo.pub"
ASSAY_PASSWORD="" assay keygen --output-key-prefix "$out/demo"
ASSAY_PASSWORD="" assay build examples/python.yaml --dest "oci:$out:python" --force \
  --push "$ref" --sign-key "$out/demo.key"

echo "== assay verify $ref --policy $out/policy.yaml" >&2
python3 - "$out/demo.pub" "$out/policy.yaml" <<'PY'
import sys
pem = open(sys.argv[1]).read().strip().splitlines()
key = "\n".join("          " + line for line in pem)
open(sys.argv[2], "w").write(f"""apiVersion: assay.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: demo-release
spec:
  images:
  - glob: "127.0.0.1:*/demo/**"
  authorities:
  - name: demo-key
    key:
      data: |
{key}
  require:
    runAsNonRoot: true
    noShell: true
    noPackageManager: true
    sbom: {{formats: [spdx, cyclonedx], ntia: true}}
    provenance: {{builderId: "urn:assay:builder:local:v1"}}
""")
PY
cat "$out/policy.yaml"
assay verify "$ref" --policy "$out/policy.yaml"

if [ "$(id -u)" = 0 ] && command -v runc >/dev/null; then
  echo "== assay run oci:$out:python -- -c 'import ssl, json; print(ssl.OPENSSL_VERSION)'" >&2
  assay run "oci:$out:python" -- -c 'import ssl, json; print(ssl.OPENSSL_VERSION)'
fi
