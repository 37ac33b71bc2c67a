#!/usr/bin/env bash
# The product's install steps, in one place: the Containerfile RUNs this script, and .ci/run runs it into a
# throwaway virtual environment on every CI run, so the image's recipe cannot rot unnoticed.
#
#   deploy/install.sh VENV            system libraries (as root, only those missing), then requirements.txt into VENV
#   deploy/install.sh --check VENV    install nothing: VENV holds every pin of requirements.txt and the parts load
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
requirements="$here/../requirements.txt"

# What the pinned wheels need from the system at run time. The wheels bundle their own libraries (psycopg's libpq,
# numpy's OpenBLAS, OpenCV, Pillow); dlib-bin links the C++ runtime. tzdata: the stores' IANA time zones (zoneinfo);
# ca-certificates: HTTPS to Webex, Meraki and AWS.
APT_PACKAGES=(ca-certificates tzdata libstdc++6)

usage() {
  echo "usage: deploy/install.sh [--check] VENV" >&2
  exit 2
}

check=false
[ "${1:-}" = "--check" ] && { check=true; shift; }
[ $# -eq 1 ] || usage
venv="$1"

system_libraries() {
  local missing=()
  for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "missing system packages (install them as root): ${missing[*]}" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -rf /var/lib/apt/lists/*
}

python_packages() {
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
}

# Every pin at its version, and the parts that fail only at run time (a native library, the face model files)
# actually load: an image that builds but cannot recognise a face must fail here, not at the first payment.
verify() {
  "$venv/bin/python" - "$requirements" <<'PY'
import re
import sys
from importlib import metadata, resources

wrong, pins = [], 0
for line in open(sys.argv[1], encoding="utf-8"):
    requirement = line.split("#", 1)[0].strip()
    if not requirement:
        continue
    pins += 1
    name, pinned = re.fullmatch(r"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==(\S+)", requirement).groups()
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        installed = None
    if installed != pinned:
        wrong.append(f"{name}: {installed or 'not installed'}, requirements.txt pins {pinned}")
if wrong:
    sys.exit("not as pinned:\n  " + "\n  ".join(wrong))

import dlib  # noqa: E402  (native: links the C++ runtime)
import psycopg  # noqa: E402

models = resources.files("face_recognition_models") / "models"
# The files vision/local_faces.py loads.
needed = (
    "shape_predictor_5_face_landmarks.dat",
    "dlib_face_recognition_resnet_model_v1.dat",
    "mmod_human_face_detector.dat",
)
absent = [name for name in needed if not (models / name).is_file()]
if absent:
    sys.exit(f"face model files missing: {absent}")
dlib.shape_predictor(str(models / needed[0]))
dlib.face_recognition_model_v1(str(models / needed[1]))
psycopg.pq.version()  # the bundled libpq loads
from zoneinfo import ZoneInfo  # noqa: E402

ZoneInfo("America/Sao_Paulo")
print(f"ok: the {pins} pins of requirements.txt; dlib and its face models, libpq and the time zones load")
PY
}

if ! $check; then
  system_libraries
  python_packages
fi
verify
