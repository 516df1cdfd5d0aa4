// Image loading (data/image.hpp): what is not a usable image is refused with the file's name; any polarity
// becomes MNIST-style light digits on dark.
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
using tg::Array;

TEST_CASE("load_image rejects what is not a usable image, with a message naming the file") {
  TempDir dir;
  std::ofstream(dir.file("text.png")) << "this is not a picture";
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("text.png"), 28, 28),
                       doctest::Contains("text.png: not a readable image"), tg::Error);
  write_bytes(dir.file("empty.png"), {});
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("empty.png"), 28, 28), doctest::Contains("empty file"),
                       tg::Error);
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("missing.png"), 28, 28), doctest::Contains("file not found"),
                       tg::Error);
  // a PNG header announcing 20000 x 20000 pixels: refused before any pixel memory is allocated
  std::vector<std::uint8_t> huge = {0x89, 'P',  'N', 'G', '\r', '\n', 0x1a, '\n', 0,    0, 0,
                                    13,   'I',  'H', 'D', 'R',  0,    0,    0x4e, 0x20, 0, 0,
                                    0x4e, 0x20, 8,   0,   0,    0,    0,    0,    0,    0, 0};
  write_bytes(dir.file("huge.png"), huge);
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("huge.png"), 28, 28),
                       doctest::Contains("20000x20000, larger than 16384 pixels a side"), tg::Error);
  huge[17] = 0x01;  // 100000 x 100000: stb_image itself refuses it
  huge[18] = 0x86, huge[19] = 0xa0, huge[21] = 0x01, huge[22] = 0x86, huge[23] = 0xa0;
  write_bytes(dir.file("huger.png"), huge);
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("huger.png"), 28, 28),
                       doctest::Contains("huger.png: not a readable"), tg::Error);
  // a real PNG with its pixel data cut off, and one with garbled pixel data
  std::vector<std::uint8_t> pixels(64 * 64);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 7);
  tg::write_png(dir.file("good.png"), pixels, 64, 64);
  std::vector<std::uint8_t> png;
  {
    const std::string s = read_text(dir.file("good.png"));
    png.assign(s.begin(), s.end());
  }
  CHECK(tg::load_image(dir.file("good.png"), 28, 28).shape() == tg::Shape{1, 1, 28, 28});
  write_bytes(dir.file("cut.png"), std::vector<std::uint8_t>(png.begin(), png.begin() + 60));
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("cut.png"), 28, 28), doctest::Contains("cut.png"), tg::Error);
  std::vector<std::uint8_t> garbled = png;
  for (std::size_t i = 41; i + 12 < garbled.size(); ++i) garbled[i] ^= 0xA5;
  write_bytes(dir.file("garbled.png"), garbled);
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("garbled.png"), 28, 28), doctest::Contains("garbled.png"),
                       tg::Error);
}

TEST_CASE("a tiny PNG whose image data would make stb_image allocate gigabytes is refused (fuzzer finding)") {
  // an 8x6 PNG whose IDAT holds another PNG instead of a zlib stream (tests/fuzz/corpus/image/regression_*)
  const std::vector<std::uint8_t> bytes = {
      137, 80,  78,  71,  13, 10,  26,  10,  0,   0,  0,   13,  73,  72,  68,  82,  0,   0,   0,   8,   0,
      0,   0,   6,   8,   6,  0,   0,   0,   254, 5,  223, 251, 0,   0,   0,   44,  73,  68,  65,  84,  120,
      218, 137, 80,  78,  71, 13,  10,  26,  10,  0,  0,   0,   13,  73,  72,  68,  82,  0,   0,   0,   28,
      0,   0,   0,   28,  8,  0,   0,   0,   0,   87, 102, 128, 72,  0,   0,   99,  96,  96,  96,  248, 127,
      34,  197, 168, 126, 23, 102, 0,   0,   23,  73, 68,  65,  84,  120, 218, 99,  96,  24,  96,  240, 31,
      8,   70,  37,  71,  37, 41,  145, 164, 19,  0,  0,   107, 174, 79,  177, 156, 129, 19,  120, 20,  49,
      192, 25,  56,  20,  49, 160, 112, 176, 40,  98, 192, 16,  64,  83,  196, 128, 213, 88,  36,  69,  0,
      158, 11,  84,  103, 96, 91,  153, 94,  186, 0,  0,   0,   0,   73,  69,  78,  68,  174, 66,  96,  130,
      235, 0,   0,   0,   0,  49,  73,  69,  78,  68, 174, 66,  96,  130};
  CHECK_THROWS_WITH_AS(tg::load_image_from_memory(bytes, 28, 28, {}, "bomb.png"),
                       doctest::Contains("bomb.png: truncated PNG"), tg::Error);
}

TEST_CASE(
    "a JPEG whose scan names an undefined Huffman table, which stb_image reads out of bounds, is refused") {
  // fuzzer findings under AddressSanitizer: DHT defines DC table 0 only, the scan also uses AC table 0; in
  // the second, stray bytes after the DQT segment (stb skips them) hide the segments from a strict walk
  // (tests/fuzz/corpus/image/regression_jpeg_undefined_table*.jpg)
  const std::vector<std::vector<std::uint8_t>> files = {
      {0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0x08,
       0xd9, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x2f,
       0x01, 0x01, 0x01, 0x45, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
       0x01, 0x30, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc2, 0x01, 0x01, 0x01,
       0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xf9, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x0b,
       0x08, 0x00, 0x08, 0x00, 0x21, 0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x15, 0x00, 0x01,
       0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
       0x00, 0x00, 0xff, 0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x3f, 0xff, 0xd9},
      {0xff, 0xd8, 0xff, 0xdb, 0x00, 0x43, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0x08, 0xd9,
       0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x74, 0x52, 0x4e, 0x53, 0x01, 0x01, 0x01, 0x01, 0x01,
       0x01, 0x2f, 0x01, 0x01, 0x01, 0x45, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
       0x01, 0x01, 0x30, 0x7a, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xff, 0xc2, 0x01, 0x01, 0x01,
       0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0xf9, 0x01, 0x01, 0xff, 0xc0, 0x00, 0x0b, 0x08,
       0x00, 0x08, 0x00, 0x21, 0x01, 0x01, 0x11, 0x00, 0xff, 0xc4, 0x00, 0x15, 0x00, 0x01, 0x01, 0x00,
       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff,
       0xda, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3f, 0x00, 0x3f, 0xff, 0xd9}};
  // the third: the first with a fill byte before its start-of-image marker (FF FF D8), which stb reads as
  // a JPEG and the walk once took for no JPEG at all (regression_jpeg_undefined_table3.jpg)
  std::vector<std::uint8_t> filled = files[0];
  filled.insert(filled.begin(), 0xff);
  for (const std::vector<std::uint8_t>& bytes : {files[0], files[1], filled}) {
    CHECK_THROWS_WITH_AS(
        tg::load_image_from_memory(bytes, 28, 28, {}, "table.jpg"),
        doctest::Contains(
            "table.jpg: corrupt JPEG: its scan uses a Huffman table that no DHT segment defines"),
        tg::Error);
  }
}

TEST_CASE("load_image makes any polarity MNIST-style: light digits on dark") {
  TempDir dir;
  std::vector<std::uint8_t> paper(28 * 28, 250);  // dark ink on white paper
  for (std::size_t y = 8; y < 20; ++y) paper[y * 28 + 14] = 10;
  tg::write_png(dir.file("paper.png"), paper, 28, 28);
  const Array x = tg::load_image(dir.file("paper.png"), 28, 28, {.normalize = false});
  CHECK(x(0, 0, 0, 0) < 0.1f);    // background became dark
  CHECK(x(0, 0, 10, 14) > 0.7f);  // ink became light
  const Array kept =
      tg::load_image(dir.file("paper.png"), 28, 28, {.invert = tg::Invert::Never, .normalize = false});
  CHECK(kept(0, 0, 0, 0) > 0.9f);
}

TEST_CASE(
    "load_image with 3 channels: planar RGB, per-channel normalization, gray replicated, no inversion") {
  TempDir dir;
  // A 4x3 RGB image, every pixel its own colour, written and read back at its own size.
  std::vector<std::uint8_t> rgb(4 * 3 * 3);
  for (std::size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<std::uint8_t>(20 * i + 5);
  tg::write_png(dir.file("rgb.png"), rgb, 4, 3, 3);
  const Array x = tg::load_image(dir.file("rgb.png"), 3, 4, {.normalize = false, .channels = 3});
  REQUIRE(x.shape() == tg::Shape{1, 3, 3, 4});
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t y = 0; y < 3; ++y)
      for (std::size_t col = 0; col < 4; ++col)
        CHECK(x(0, c, y, col) == doctest::Approx(rgb[(y * 4 + col) * 3 + c] / 255.f).epsilon(1e-6));
  const Array n =
      tg::load_image(dir.file("rgb.png"), 3, 4,
                     {.channels = 3, .channel_mean = {0.1f, 0.2f, 0.3f}, .channel_std = {0.5f, 2.f, 4.f}});
  CHECK(n(0, 1, 2, 3) == doctest::Approx((rgb[(2 * 4 + 3) * 3 + 1] / 255.f - 0.2f) / 2.f));
  CHECK(n(0, 2, 0, 0) == doctest::Approx((rgb[2] / 255.f - 0.3f) / 4.f));
  // A light grayscale image (it would be inverted for a one-channel model) is the same value in R, G and B.
  tg::write_png(dir.file("gray.png"), std::vector<std::uint8_t>(5 * 5, 230), 5, 5);
  const Array g = tg::load_image(dir.file("gray.png"), 5, 5, {.normalize = false, .channels = 3});
  for (std::size_t c = 0; c < 3; ++c) CHECK(g(0, c, 2, 2) == doctest::Approx(230 / 255.f));
  // Missing statistics and other channel counts are errors, not reads past a vector.
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("rgb.png"), 3, 4, {.channels = 3}),
                       "load_image: 3 channels need 3 means and 3 stds; received 0 and 0", tg::Error);
  CHECK_THROWS_WITH_AS(tg::load_image(dir.file("rgb.png"), 3, 4, {.channels = 2}),
                       "load_image: 2 channels requested; expected 1 or 3", tg::Error);
  CHECK_THROWS_AS(tg::write_png(dir.file("bad.png"), rgb, 4, 4, 3), tg::Error);
}
