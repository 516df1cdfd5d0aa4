#!/usr/bin/env python3
"""A CIFAR-10-format data set (data_batch_1.bin, test_batch.bin, batches.meta.txt) made from MNIST digits:
each 28x28 digit padded to 32x32 and drawn in a random colour on a random dark background with noise, so the
label is in the shape, not in the colour. For trying 3x32x32 models without CIFAR-10 itself.

    python3 make_color_digits.py MNIST_DIR OUT_DIR [TRAIN_COUNT] [TEST_COUNT]
"""
import os
import sys

import numpy as np


def read_idx(path, header):
    with open(path, "rb") as f:
        data = f.read()
    return np.frombuffer(data, dtype=np.uint8, offset=header)


def convert(images, labels, rng):
    n = len(labels)
    digits = np.zeros((n, 32, 32), dtype=np.float32)
    digits[:, 2:30, 2:30] = images.reshape(n, 28, 28) / 255.0
    ink = rng.uniform(0.4, 1.0, size=(n, 3, 1, 1))
    paper = rng.uniform(0.0, 0.35, size=(n, 3, 1, 1))
    noise = rng.normal(0, 0.05, size=(n, 3, 32, 32))
    rgb = paper + (ink - paper) * digits[:, None] + noise
    pixels = np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
    records = np.empty((n, 3073), dtype=np.uint8)
    records[:, 0] = labels
    records[:, 1:] = pixels.reshape(n, -1)
    return records.tobytes()


def main():
    mnist, out = sys.argv[1], sys.argv[2]
    train_count = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
    test_count = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
    rng = np.random.default_rng(0)
    os.makedirs(out, exist_ok=True)
    for images, labels, count, name in (("train-images-idx3-ubyte", "train-labels-idx1-ubyte", train_count,
                                         "data_batch_1.bin"),
                                        ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", test_count,
                                         "test_batch.bin")):
        x = read_idx(os.path.join(mnist, images), 16)[:count * 784]
        y = read_idx(os.path.join(mnist, labels), 8)[:count]
        with open(os.path.join(out, name), "wb") as f:
            f.write(convert(x, y, rng))
    with open(os.path.join(out, "batches.meta.txt"), "w") as f:
        f.write("\n".join(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]) + "\n")
    print(f"wrote {train_count} training and {test_count} test records to {out}")


if __name__ == "__main__":
    main()
