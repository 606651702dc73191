#!/usr/bin/env bash
# Build llama-cpp-python once into a wheelhouse keyed by version and CPU features, and print the wheel's path.
#
# Why not a plain `pip install llama-cpp-python`: pip compiles it with -march=native, which on hosts that
# advertise AMX but do not enable it (some VMs, this one included) dies with "Illegal instruction" at the
# first batched matrix product. So we turn on, one by one, the instruction sets this CPU reports (AVX2,
# AVX-512, VNNI, ...) and never AMX. pip's own wheel cache is keyed by the sdist, not by CMAKE_ARGS, so it
# could hand back a native build: this script bypasses it and keys its own wheelhouse by the flags.
set -euo pipefail

version="${LLAMA_CPP_VERSION:-0.3.36}"
python="${PYTHON:-python3}"
flags="-DGGML_NATIVE=OFF"
tag="$(uname -m)"
if [ "$(uname -m)" = x86_64 ]; then
  cpu="$(grep -m1 '^flags' /proc/cpuinfo || true)"
  for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
              avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if grep -qw "${pair%%:*}" <<<"$cpu"; then
      flags="$flags -DGGML_${pair#*:}=ON"
    fi
  done
fi
tag="$tag-$(sha256sum <<<"$flags" | cut -c1-10)"
pytag="$("$python" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
wheelhouse="${XDG_CACHE_HOME:-$HOME/.cache}/genai-chatbot/llama-cpp-python-$version-$tag-$pytag"

wheel="$(ls "$wheelhouse"/llama_cpp_python-"$version"-*.whl 2>/dev/null | head -n 1 || true)"
if [ -z "$wheel" ]; then
  echo "Building llama-cpp-python $version for $tag (a few minutes on 2 cores, once per machine)..." >&2
  mkdir -p "$wheelhouse"
  CMAKE_ARGS="$flags" "$python" -m pip wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
    -w "$wheelhouse" "llama-cpp-python==$version" >&2
  wheel="$(ls "$wheelhouse"/llama_cpp_python-"$version"-*.whl | head -n 1)"
fi
echo "$wheel"
