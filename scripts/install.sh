#!/usr/bin/env bash
# Install distilled-assistant and everything it needs into the current Python (3.11+).
#   bash scripts/install.sh            # the app and both CLIs
#   EXTRAS=test bash scripts/install.sh  # plus the test tools
#   CMAKE_ARGS="..." bash scripts/install.sh  # your own llama.cpp build flags
#
# llama-cpp-python compiles from source (4 to 10 minutes on 2 cores). The build targets this CPU's
# vector extensions, named one by one from /proc/cpuinfo: AVX2 everywhere, AVX-512 (with VNNI,
# VBMI, BF16) where the CPU has them, which runs prompts about 1.4x faster on the 135M Q8_0 here.
# Not GGML_NATIVE: on CPUs with AMX a native build emits AMX instructions that some kernels and
# sandboxes refuse (SIGILL). The wheel is kept in a cache folder named after the flags, so a
# re-install skips the build and a change of flags builds a new one. The project is installed
# editable: `assistant` and `distill` run this checkout, edits included. Each step says what it
# does and how long it took, on stderr.
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

t0=$SECONDS
step() { echo "[$1/4] $2" >&2; }
took() { echo "      done in $((SECONDS - t0))s" >&2; t0=$SECONDS; }

llama=$(grep -o '"llama-cpp-python[^"]*"' pyproject.toml | tr -d '"' | sed 's/\[[a-z,]*\]//')
wheels="${XDG_CACHE_HOME:-$HOME/.cache}/distilled-assistant/wheels/$(printf '%s %s' "$llama" "$CMAKE_ARGS" | sha256sum | cut -c1-16)"
if ! compgen -G "$wheels/llama_cpp_python-*.whl" >/dev/null; then
  step 1 "building $llama for this CPU (4 to 10 minutes on 2 cores; once): $CMAKE_ARGS"
  python3 -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python "$llama" -w "$wheels.tmp" &
  build=$!
  while kill -0 $build 2>/dev/null; do sleep 5; kill -0 $build 2>/dev/null && (( (SECONDS - t0) % 60 < 5 )) && echo "      still building, $(( (SECONDS - t0) / 60 )) min" >&2; done
  wait $build
  rm -rf "$wheels" && mv "$wheels.tmp" "$wheels"
else
  step 1 "llama-cpp-python for these flags is built already (cached)"
fi
took
# the cached build, even over a llama-cpp-python of the same version built with other flags
step 2 "installing the llama-cpp-python build"
python3 -m pip install -q --no-deps --force-reinstall "$wheels"/llama_cpp_python-*.whl
took
step 3 "installing distilled-assistant${EXTRAS:+ [$EXTRAS]} and its libraries (torch, transformers, textual, …; about 2 minutes)"
python3 -m pip install -q --find-links "$wheels" -e ".${EXTRAS:+[$EXTRAS]}"
took
step 4 "preparing the shipped students (merging each adapter into its base, once)"
python3 -m assistant.cli models prepare >/dev/null || echo "note: students will be merged on first use" >&2
took
