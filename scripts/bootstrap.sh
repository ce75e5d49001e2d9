#!/usr/bin/env bash
# Create or update .venv at the repository root with every dependency, pinned.
# Idempotent: does nothing when the requirement files have not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for c in python3.11 python3; do command -v "$c" >/dev/null && { PY="$c"; break; }; done
fi
[ -n "$PY" ] || { echo "bootstrap: Python 3.11 is required (set PYTHON=...)" >&2; exit 1; }
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "bootstrap: $PY is older than 3.11" >&2; exit 1; }

[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.facereg-requirements
want=$(cat requirements.txt requirements-dev.txt requirements-torch.txt scripts/bootstrap.sh pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

pip=(.venv/bin/python -m pip install --disable-pip-version-check -q)
"${pip[@]}" --upgrade pip
if [ "$(uname -m)" = "aarch64" ]; then
  "${pip[@]}" torch==2.9.1 torchvision==0.24.1
else
  "${pip[@]}" -r requirements-torch.txt
fi
"${pip[@]}" -r requirements.txt -r requirements-dev.txt
"${pip[@]}" --no-deps facenet-pytorch==2.6.0
"${pip[@]}" --no-deps -e .
.venv/bin/python -c "import torch, torchvision, facenet_pytorch, cv2, dlib, onnxruntime" \
  || { echo "bootstrap: the environment does not import; see the errors above" >&2; exit 1; }
echo "$want" > "$stamp"
echo "bootstrap: .venv ready"
