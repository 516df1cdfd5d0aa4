#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/{idx,safetensors,image,model_file,checkpoint,cifar10}/ with the standard
library only (checkpoint/ from the metadata of tests/fixtures/cli/small.safetensors).

Run once from anywhere: python3 tests/fuzz/make_corpus.py. The output is deterministic; the files are
committed so the fuzzers never depend on this script at run time.
"""
import json
import pathlib
import struct
import zlib

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"


def write(folder, name, data):
    path = CORPUS / folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --- IDX: magic 0 0 0x08 ndim, big-endian uint32 dims, unsigned bytes -------------------------------------
def idx(dims, payload):
    return bytes([0, 0, 0x08, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)


def make_idx():
    write("idx", "images_3x2x2.idx", idx([3, 2, 2], range(0, 240, 20)))
    write("idx", "labels_5.idx", idx([5], [7, 2, 1, 0, 4]))
    write("idx", "images_2x1x3x3.idx", idx([2, 1, 3, 3], [(i * 29) % 256 for i in range(18)]))
    write("idx", "empty_0x28x28.idx", idx([0, 28, 28], []))


# --- safetensors: little-endian u64 header length, JSON header (space-padded to 8), raw F32 data -------------
def safetensors(tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, shape, values in tensors:
        blob = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def make_safetensors():
    write("safetensors", "linear.st", safetensors(
        [("0.weight", [2, 3], [0.5, -1.0, 2.0, 0.25, 3.5, -0.75]), ("0.bias", [2], [0.1, -0.1])],
        {"format": "pt", "tapegrad": "0.1.0"}))
    write("safetensors", "conv_scalar_empty.st", safetensors(
        [("conv.weight", [1, 1, 2, 2], [1.0, 2.0, 3.0, 4.0]), ("step", [], [42.0]), ("none", [0, 3], [])]))
    write("safetensors", "metadata_only.st", safetensors([], {"epoch": "3"}))


# --- images ------------------------------------------------------------------------------------------------
def png(width, height, color_type, rows, palette=None, trns=None, bit_depth=8):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + bytes(row) for row in rows)  # filter type 0 (None) on every row
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette:
        out += chunk(b"PLTE", bytes(c for rgb in palette for c in rgb))
    if trns:
        out += chunk(b"tRNS", bytes(trns))
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def bmp(width, height, bits, rows_bottom_up, palette=None):
    palette_bytes = b"".join(bytes([b, g, r, 0]) for r, g, b in (palette or []))
    row_size = (width * bits // 8 + 3) & ~3
    pixels = b"".join(bytes(row).ljust(row_size, b"\x00") for row in rows_bottom_up)
    offset = 14 + 40 + len(palette_bytes)
    file_header = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, bits, 0, len(pixels), 2835, 2835,
                       len(palette or []), 0)
    return file_header + info + palette_bytes + pixels


def jpeg_gray_8x8(dc_category_bits):
    """A baseline grayscale 8x8 JPEG with one block: a flat gray whose DC is given by the scan bits.

    Tiny custom Huffman tables keep it hand-checkable: the DC table codes category 0 as '0' and category 8
    as '10'; the AC table codes EOB (0x00) as '0'.
    """
    def segment(marker, body):
        return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body

    dqt = segment(0xDB, b"\x00" + bytes([1] * 64))                          # table 0, all ones
    sof = segment(0xC0, struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00")  # 8x8, 1 component, 1x1, q 0
    dc_counts = bytes([1, 1] + [0] * 14)                                    # one code of length 1, one of 2
    dht_dc = segment(0xC4, b"\x00" + dc_counts + bytes([0, 8]))             # class 0 (DC), table 0
    ac_counts = bytes([1] + [0] * 15)
    dht_ac = segment(0xC4, b"\x10" + ac_counts + bytes([0]))                # class 1 (AC), table 0: EOB
    sos = segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")                        # comp 1 uses DC 0 / AC 0
    bits = dc_category_bits + "0"                                           # DC, then EOB
    bits += "1" * ((8 - len(bits) % 8) % 8)                                 # pad with ones
    scan = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")
    return b"\xff\xd8" + dqt + sof + dht_dc + dht_ac + sos + scan + b"\xff\xd9"


def make_images():
    # 28x28 gray: a bright vertical stroke on black, MNIST-like
    digit = [[255 if 12 <= x <= 15 and 4 <= y <= 23 else 0 for x in range(28)] for y in range(28)]
    write("image", "digit_28x28_gray.png", png(28, 28, 0, digit))
    # 8x6 RGBA: dark ink on a half-transparent background (exercises the alpha compositing)
    rgba = [[c for x in range(8) for c in ((0, 0, 0, 255) if x == y else (200, 100, 50, 128))] for y in range(6)]
    write("image", "ink_8x6_rgba.png", png(8, 6, 6, rgba))
    # 4x4 palette with a transparent entry
    write("image", "palette_4x4.png",
          png(4, 4, 3, [[(x + y) % 3 for x in range(4)] for y in range(4)],
              palette=[(0, 0, 0), (255, 255, 255), (128, 64, 32)], trns=[255, 255, 0]))
    # 5x3 24-bit BMP (rows padded to 4 bytes, stored bottom-up, BGR)
    write("image", "gradient_5x3_24bit.bmp",
          bmp(5, 3, 24, [[v for x in range(5) for v in (x * 50, y * 100, 255 - x * 50)] for y in range(3)]))
    # 6x4 8-bit palettized BMP
    write("image", "checker_6x4_8bit.bmp",
          bmp(6, 4, 8, [[(x + y) % 2 for x in range(6)] for y in range(4)], palette=[(0, 0, 0), (255, 255, 255)]))
    # 8x8 baseline JPEGs: flat mid-gray (DC diff 0) and flat bright (DC category 8, value 255)
    write("image", "flat_8x8_gray.jpg", jpeg_gray_8x8("0"))
    write("image", "bright_8x8_gray.jpg", jpeg_gray_8x8("10" + "11111111"))


# --- model files (layers/model_file.hpp), for a [1, 12, 12] input and 3 classes --------------------------
def make_model_files():
    write("model_file", "small_lenet.tg",
          b"# lenet-like, for 12x12\nconv2d 4 3 padding=1   # keeps 12x12\nrelu\nmaxpool2d 2\n"
          b"conv2d 8 3\nrelu\nmaxpool2d 2\nflatten\nlinear 16\nrelu\nlinear classes\n")
    write("model_file", "every_layer.tg",
          b"conv2d 4 3x5 stride=2 padding=1x2 dilation=2 bias=false\r\nleakyrelu slope=0.2\r\n"
          b"maxpool2d 3 stride=2 padding=1\r\nconv2d 2 3 padding=same\r\nconv2d 2 1 padding=valid\r\n"
          b"sigmoid\r\ntanh\r\nflatten\r\ndropout p=0.25\r\nlinear 8 bias=true\r\n\tlinear 3\r\n"
          b"softmax\r\nlogsoftmax\r\n")
    write("model_file", "errors.tg", b"\n# a comment only\n\nconv2 6 5 strid=2\n")
    # blocks: residual / shortcut / end, repeat, nesting, 'in', relu6 (builds for [1, 12, 12], 3 classes)
    write("model_file", "residual_blocks.tg",
          b"conv2d 4 3 padding=1 bias=false\nbatchnorm2d\nrelu6\nrepeat 2\n  residual\n"
          b"    conv2d in 3 padding=1 groups=in\n    relu\n    conv2d 2*in 1\n    conv2d 4 1 groups=2\n"
          b"  end\nend\nresidual\n  conv2d 8 3 stride=2 padding=1\n  residual\n    relu\n  end\n"
          b"shortcut\n  conv2d 8 1 stride=2\nend\nglobalavgpool2d\nlinear classes\n")
    # block faults: a shape mismatch at 'end', then an unclosed repeat inside a block
    write("model_file", "block_errors.tg",
          b"residual\n  conv2d 8 3\nend\nrepeat 1000000\n  residual\n  shortcut\n  shortcut\nend\n"
          b"repeat 3\n  residual\n    relu\n")
    write("model_file", "deep_nesting.tg", b"residual\n" * 120 + b"relu\n" + b"end\n" * 120)


# --- checkpoint metadata (apps/cli/run_checkpoint.hpp), fields separated by NUL: run, model_text, format, model --
def make_checkpoint():
    # The real metadata set of the checkpoint `tapegrad train` wrote for tests/fixtures/cli/small.tg.
    blob = (CORPUS.parent.parent / "fixtures" / "cli" / "small.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    meta = json.loads(blob[8:8 + n])["__metadata__"]
    fields = [meta["run"], meta["model_text"], meta["format"], meta["model"]]
    write("checkpoint", "small_full.meta", b"\0".join(f.encode() for f in fields))
    write("checkpoint", "small_run_only.json", meta["run"].encode())
    # Three channels, interrupted in its third epoch after two recorded ones, Adam, a step schedule.
    run = json.loads(meta["run"])
    run.update(input=[3, 8, 8], class_names=["a", "b"], optimizer=dict(run["optimizer"], kind="adam"),
               schedule={"kind": "step", "warmup_epochs": 0.5}, epochs=4, epoch=2, step_in_epoch=3,
               partial={"loss_sum": 1.5, "seconds": 0.25, "seen": 24, "correct": 7},
               normalization={"mean": [0.5, 0.25, 0.125], "std": [0.5, 1.0, 2.0]},
               history=run["history"] * 2, generator="")
    text = b"conv2d 4 3 padding=same\nbatchnorm2d\nrelu\nglobalavgpool2d\nlinear classes\n"
    write("checkpoint", "rgb_interrupted.meta",
          json.dumps(run, separators=(",", ":")).encode() + b"\0" + text)
    # Numbers from_metadata once converted unchecked: a float-to-int cast out of range (undefined behaviour) and
    # a float that became inf, written back as null.
    real = meta["run"]
    write("checkpoint", "regression_epoch_1e20.json", real.replace('"epoch":1,', '"epoch":1e20,').encode())
    write("checkpoint", "regression_lr_1e39.json", real.replace('"lr":', '"lr":1e39,"_":', 1).encode())


# --- CIFAR-10 binary: records of 1 label byte + 1024 R, 1024 G, 1024 B bytes; batches.meta.txt ---------------
def make_cifar10():
    record = bytes([3]) + bytes((k * 7 + k // 1024 * 50) % 256 for k in range(3072))
    write("cifar10", "one_record.bin", record)
    write("cifar10", "truncated_record.bin", record[:200])
    write("cifar10", "batches.meta.txt", b"airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n")


if __name__ == "__main__":
    make_idx()
    make_safetensors()
    make_images()
    make_model_files()
    make_checkpoint()
    make_cifar10()
