#!/usr/bin/env bash
# Build llama-cpp-python once into a wheelhouse keyed by version and build flags, and print the wheel's path.
#
# Why not a plain `pip install llama-cpp-python`: pip compiles it with -march=native, which on hosts
# that advertise AMX but do not enable it (some VMs, this one included) dies with SIGILL at the first
# batched matmul. We build for x86-64-v3 (AVX2/FMA/F16C) instead: portable across current x86 hosts and
# fast enough for the embedded model. pip's own wheel cache is keyed by the sdist, not by CMAKE_ARGS, so
# it could hand back a native build: the build here bypasses it and keys the wheelhouse itself.
set -euo pipefail

version="${LLAMA_CPP_VERSION:-0.3.36}"
python="${PYTHON:-python3}"
case "$(uname -m)" in
  x86_64) flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"; tag=x86-64-v3 ;;
  *) flags="-DGGML_NATIVE=OFF"; tag="$(uname -m)-generic" ;;
esac
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
