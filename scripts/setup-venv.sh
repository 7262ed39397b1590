#!/usr/bin/env bash
# Creates/updates the project venv from a requirements file: requirements-torch.txt (the
# libtorch tch links against) or requirements-oracle.txt (that and the python peers the parity
# tests compare with). Idempotent: pip skips what is already satisfied.
set -euo pipefail
venv=$1
req=$2
py=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=24"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
# cudarc looks for libnccl.so; the wheel ships only the versioned name.
nccl=$(ls -d "$venv"/lib/python3*/site-packages/nvidia/nccl/lib 2>/dev/null | head -1 || true)
if [ -n "$nccl" ] && [ -e "$nccl/libnccl.so.2" ] && [ ! -e "$nccl/libnccl.so" ]; then
  ln -s libnccl.so.2 "$nccl/libnccl.so"
fi
"$venv/bin/python" -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
if grep -q '^clip-anytorch' "$req"; then "$venv/bin/python" -c "import clip"; fi
