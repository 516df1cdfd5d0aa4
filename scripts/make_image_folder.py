#!/usr/bin/env python3
"""A folder of PNG images by class, made from an MNIST-format data set (MNIST or Fashion-MNIST IDX files, raw
or .gz), for trying `tapegrad train --data DIR` on image folders:

    OUT/train/<class>/00042.png ...  and  OUT/test/<class>/...   (or OUT/<class>/... with --flat)

--color draws each 28x28 image at 32x32 in a random colour on a random dark background with noise (RGB), so
the class is in the shape, not the colour. Needs numpy only (PNGs are written with zlib).

    python3 make_image_folder.py IDX_DIR OUT_DIR [--train N] [--test N] [--color] [--flat]
e.g.
    python3 scripts/make_image_folder.py /usr/share/datasets/fashion-mnist /tmp/fashion_png --train 5000
"""
import argparse
import gzip
import os
import struct
import zlib

import numpy as np

FASHION = ["T-shirt top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]


def read_idx(directory, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            with (gzip.open if name.endswith(".gz") else open)(path, "rb") as f:
                data = f.read()
            dims = data[3]
            shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    raise SystemExit(f"{directory}: no {stem} (raw or .gz)")


def png(pixels):
    """An 8-bit PNG of a [H, W] (gray) or [H, W, 3] (RGB) uint8 array."""
    h, w = pixels.shape[:2]
    colour = 2 if pixels.ndim == 3 else 0
    raw = b"".join(b"\0" + pixels[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def colourize(images, rng):
    n = len(images)
    shapes = np.zeros((n, 32, 32), dtype=np.float32)
    shapes[:, 2:30, 2:30] = images / 255.0
    ink = rng.uniform(0.4, 1.0, size=(n, 1, 1, 3))
    paper = rng.uniform(0.0, 0.35, size=(n, 1, 1, 3))
    rgb = paper + (ink - paper) * shapes[..., None] + rng.normal(0, 0.05, size=(n, 32, 32, 3))
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("idx_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--train", type=int, default=3000, help="training images (default 3000)")
    parser.add_argument("--test", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--color", action="store_true", help="32x32 RGB instead of 28x28 gray")
    parser.add_argument("--flat", action="store_true", help="OUT/<class>/ for --val-split, no train/ test/")
    args = parser.parse_args()
    names = FASHION if "fashion" in args.idx_dir.lower() else [str(d) for d in range(10)]
    rng = np.random.default_rng(0)
    for split, prefix, count in (("train", "train", args.train), ("test", "t10k", args.test)):
        images = read_idx(args.idx_dir, f"{prefix}-images-idx3-ubyte")[:count]
        labels = read_idx(args.idx_dir, f"{prefix}-labels-idx1-ubyte")[:count]
        if args.color:
            images = colourize(images, rng)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = os.path.join(args.out_dir, *([] if args.flat else [split]), names[label])
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"{split}{i:05d}.png"), "wb") as f:
                f.write(png(image))
    layout = "<class>/" if args.flat else "train/<class>/ and test/<class>/"
    print(f"wrote {args.train} training and {args.test} test PNGs to {args.out_dir}/{layout}")


if __name__ == "__main__":
    main()
