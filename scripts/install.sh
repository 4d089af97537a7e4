#!/usr/bin/env bash
# Install distilled-assistant and everything it needs into the current Python (3.11+).
#   bash scripts/install.sh            # the app and both CLIs
#   EXTRAS=test bash scripts/install.sh  # plus the test tools
#   CMAKE_ARGS="..." bash scripts/install.sh  # your own llama.cpp build flags
#
# llama-cpp-python compiles from source (about 10 minutes on 2 cores). The build targets this CPU's
# vector extensions, named one by one from /proc/cpuinfo: AVX2 everywhere, AVX-512 (with VNNI,
# VBMI, BF16) where the CPU has them, which runs prompts about 1.4x faster on the 135M Q8_0 here.
# Not GGML_NATIVE: on CPUs with AMX a native build emits AMX instructions that some kernels and
# sandboxes refuse (SIGILL). The wheel is kept in a cache folder named after the flags, so a
# re-install takes seconds and a change of flags builds a new one.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_ROOT_USER_ACTION=ignore

if [[ -z "${CMAKE_ARGS:-}" ]]; then
  cpu=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  has() { [[ "$cpu" == *" $1 "* ]]; }
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAVA_BUILD=OFF"
  if has avx512f && has avx512bw && has avx512dq && has avx512vl; then
    CMAKE_ARGS+=" -DGGML_AVX512=ON"
    has avx512vbmi && CMAKE_ARGS+=" -DGGML_AVX512_VBMI=ON"
    has avx512_vnni && CMAKE_ARGS+=" -DGGML_AVX512_VNNI=ON"
    has avx512_bf16 && CMAKE_ARGS+=" -DGGML_AVX512_BF16=ON"
  fi
fi
export CMAKE_ARGS

llama=$(grep -o '"llama-cpp-python[^"]*"' pyproject.toml | tr -d '"' | sed 's/\[[a-z,]*\]//')
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/distilled-assistant/wheels/$(printf '%s %s' "$llama" "$CMAKE_ARGS" | sha256sum | cut -c1-16)"
if ! compgen -G "$wheels/llama_cpp_python-*.whl" >/dev/null; then
  echo "building $llama for this CPU (about 10 minutes on 2 cores; once): $CMAKE_ARGS" >&2
  python3 -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python "$llama" -w "$wheels.tmp"
  rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
fi
# the cached build, even over a llama-cpp-python of the same version built with other flags
python3 -m pip install -q --no-deps --force-reinstall "$wheels"/llama_cpp_python-*.whl
python3 -m pip install -q --find-links "$wheels" ".${EXTRAS:+[$EXTRAS]}"
python3 -m assistant.cli models prepare >/dev/null || echo "note: students will be merged on first use" >&2
