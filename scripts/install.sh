#!/usr/bin/env bash
# Install distilled-assistant and everything it needs into the current Python (3.11+).
#   bash scripts/install.sh            # the app and both CLIs
#   EXTRAS=test bash scripts/install.sh  # plus the test tools
# llama-cpp-python compiles from source (about 10 minutes on 2 cores; pip caches the wheel after).
# GGML_NATIVE=OFF with an AVX2 baseline: a native build can emit AMX instructions that some
# kernels and sandboxes refuse (SIGILL), and an AVX2 build runs on any x86-64 CPU of the last decade.
set -euo pipefail
cd "$(dirname "$0")/.."
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF}"
export PIP_ROOT_USER_ACTION=ignore
python3 -m pip install -q ".${EXTRAS:+[$EXTRAS]}"
python3 -m assistant.cli models prepare >/dev/null || echo "note: students will be merged on first use" >&2
