// Images on stb_image: the checks made before it decodes untrusted bytes (size bounds, the PNG data inflated
// first, JPEG Huffman tables defined before a scan names them), decoding and resizing, load_image, write_png.
#include "data/image.hpp"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <memory>
#include <utility>

#include "core/base/error.hpp"
#include "core/io/atomic_file.hpp"
#include "data/idx.hpp"

namespace tg {
namespace {
constexpr int kMaxSide = 16384;
// 16 megapixels (a 4000 x 4000 photo): decoding costs time and 2 bytes a pixel, and a 70-byte BMP header can
// claim any size (stb_image fills in missing pixel data), so the area is bounded before decoding.
constexpr long long kMaxPixels = 1LL << 24;
// PNG image data is a zlib stream that stb_image inflates into a buffer it keeps doubling, up to 2 GiB, until
// the stream ends: a small corrupt file can make it allocate gigabytes. So the stream is inflated here first,
// bounded by what the header's width and height can need (8 bytes a pixel plus filter bytes, for any bit
// depth, channel count or interlacing), and a corrupt or oversized stream is refused before stb_image sees
// it.
void check_png_data(const std::vector<std::uint8_t>& bytes, int width, int height, const std::string& name) {
  static const std::uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() < 8 || !std::equal(kSignature, kSignature + 8, bytes.begin())) return;  // not a PNG
  // Every chunk must lie inside the file, up to and including IEND, so that the data checked here is exactly
  // the data stb_image will inflate.
  std::vector<std::uint8_t> data;  // the IDAT chunks, concatenated
  bool ended = false;
  for (std::size_t pos = 8; !ended;) {
    if (pos + 12 > bytes.size()) fail(name, ": truncated PNG: no IEND chunk");
    const std::size_t length = (std::size_t{bytes[pos]} << 24) | (std::size_t{bytes[pos + 1]} << 16) |
                               (std::size_t{bytes[pos + 2]} << 8) | bytes[pos + 3];
    if (length > bytes.size() - pos - 12)
      fail(name, ": truncated PNG: a chunk runs past the end of the file");
    const auto type = bytes.begin() + static_cast<std::ptrdiff_t>(pos + 4);
    if (std::equal(type, type + 4, "IDAT"))
      data.insert(data.end(), type + 4, type + 4 + static_cast<std::ptrdiff_t>(length));
    ended = std::equal(type, type + 4, "IEND");
    pos += length + 12;
  }
  const auto w = static_cast<unsigned long long>(width), h = static_cast<unsigned long long>(height);
  const unsigned long long bound = (h + 7) * (w * 8 + 8) + 1024;
  z_stream z{};
  if (inflateInit(&z) != Z_OK) fail(name, ": cannot check the PNG data (zlib)");
  z.next_in = data.data();
  z.avail_in = static_cast<uInt>(data.size());
  std::vector<std::uint8_t> sink(1 << 16);
  unsigned long long total = 0;
  int rc = Z_OK;
  while (rc == Z_OK) {
    z.next_out = sink.data();
    z.avail_out = static_cast<uInt>(sink.size());
    rc = inflate(&z, Z_NO_FLUSH);
    total += sink.size() - z.avail_out;
    if (total > bound) break;
    if (rc == Z_BUF_ERROR || (rc == Z_OK && z.avail_in == 0 && z.avail_out != 0))
      break;  // stream ended early
  }
  inflateEnd(&z);
  if (total > bound) {
    fail(name, ": corrupt PNG: its image data inflates to more than a ", width, "x", height,
         " image can hold");
  }
  if (rc != Z_STREAM_END) fail(name, ": corrupt PNG: its image data is not a complete zlib stream");
}

// stb_image's JPEG decoder decodes a scan with whatever Huffman table its ids name, defined or not: a table
// no DHT segment defined is uninitialized memory, and reading with it goes out of bounds (fuzzer finding,
// under AddressSanitizer). So the marker segments up to the first scan (SOS) are walked, the tables DHT
// defines are noted, and a first scan that names an undefined table is refused (DC tables for a progressive
// scan of DC coefficients, AC tables for one of AC coefficients, both otherwise).
void check_jpeg_tables(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  // SOI: 0xFF 0xD8, after any number of 0xFF fill bytes, as stb reads a marker (a fuzzer finding began
  // FF FF D8)
  std::size_t soi = 1;
  while (soi < bytes.size() && bytes[soi] == 0xFF) ++soi;
  if (bytes.empty() || bytes[0] != 0xFF || soi >= bytes.size() || bytes[soi] != 0xD8) return;  // not a JPEG
  bool defined[2][4] = {};  // [DC, AC][table id]
  bool progressive = false;
  for (std::size_t i = soi + 1; i + 3 < bytes.size();) {
    const std::uint8_t marker = bytes[i + 1];
    if (bytes[i] != 0xFF || marker == 0xFF) {  // stb skips bytes between segments, and fill bytes
      ++i;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD9)) {  // markers without a length
      i += 2;
      continue;
    }
    const std::size_t length = static_cast<std::size_t>(bytes[i + 2]) << 8 | bytes[i + 3];  // counts itself
    const std::size_t begin = i + 4, end = std::min(bytes.size(), i + 2 + length);
    if (marker == 0xC2 || marker == 0xC6 || marker == 0xCA || marker == 0xCE) progressive = true;
    if (marker == 0xC4) {  // DHT: tables of [class and id, 16 code counts, the symbols]
      for (std::size_t t = begin; t + 17 <= end;) {
        const std::uint8_t cls = bytes[t] >> 4, id = bytes[t] & 15;
        if (cls < 2 && id < 4) defined[cls][id] = true;
        std::size_t symbols = 0;
        for (std::size_t k = 1; k <= 16; ++k) symbols += bytes[t + k];
        t += 17 + symbols;
      }
    }
    if (marker ==
        0xDA) {  // SOS: components, each with its DC and AC table ids, then Ss (the first coefficient)
      if (begin >= end) return;
      const std::size_t components = bytes[begin];
      if (begin + 1 + 2 * components >= end) return;
      const bool dc_scan = bytes[begin + 1 + 2 * components] == 0;
      for (std::size_t c = 0; c < components; ++c) {
        const std::uint8_t tables = bytes[begin + 2 + 2 * c];
        const bool dc_ok = (progressive && !dc_scan) || ((tables >> 4) < 4 && defined[0][tables >> 4]);
        const bool ac_ok = (progressive && dc_scan) || ((tables & 15) < 4 && defined[1][tables & 15]);
        if (!dc_ok || !ac_ok)
          fail(name, ": corrupt JPEG: its scan uses a Huffman table that no DHT segment defines");
      }
      return;
    }
    i += 2 + length;
  }
}

// Alpha over white paper: transparent backgrounds look like the page.
std::uint8_t over_white(float v, float alpha) {
  return static_cast<std::uint8_t>(v * alpha + 255.f * (1.f - alpha) + 0.5f);
}

}  // namespace

ImageHeader read_image_header(const std::vector<std::uint8_t>& bytes, const std::string& name) {
  if (bytes.empty()) fail(name, ": empty file, expected an image");
  if (bytes.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    fail(name, ": file too large");
  int width = 0, height = 0, channels = 0;
  if (!stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels)) {
    fail(name, ": not a readable image (", stbi_failure_reason(), "); expected PNG, JPEG or BMP");
  }
  if (width <= 0 || height <= 0) fail(name, ": image has no pixels (", width, "x", height, ")");
  if (width > kMaxSide || height > kMaxSide) {
    fail(name, ": image is ", width, "x", height, ", larger than ", kMaxSide, " pixels a side");
  }
  if (static_cast<long long>(width) * height > kMaxPixels) {
    fail(name, ": image is ", width, "x", height, ", more than ", kMaxPixels, " pixels");
  }
  return {static_cast<std::size_t>(height), static_cast<std::size_t>(width),
          static_cast<std::size_t>(channels)};
}

std::vector<std::uint8_t> decode_image(const std::vector<std::uint8_t>& bytes, std::size_t h, std::size_t w,
                                       std::size_t channels, const std::string& name) {
  if (h == 0 || w == 0 || h > kMaxSide || w > kMaxSide)
    fail("decode_image: target size ", h, "x", w, " is invalid");
  if (channels != 1 && channels != 3)
    fail("decode_image: ", channels, " channels requested; expected 1 or 3");
  const ImageHeader header = read_image_header(bytes, name);
  check_png_data(bytes, static_cast<int>(header.cols), static_cast<int>(header.rows), name);
  check_jpeg_tables(bytes, name);
  // Decoded with an alpha channel (gray + alpha, or RGBA), composited over white, interleaved.
  const int decoded_channels = static_cast<int>(channels) + 1;
  int width = 0, height = 0, file_channels = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &file_channels,
                            decoded_channels),
      stbi_image_free);
  if (!data) fail(name, ": cannot decode image (", stbi_failure_reason(), ")");
  const std::size_t n = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
  std::vector<std::uint8_t> flat(n * channels);
  for (std::size_t i = 0; i < n; ++i) {
    const stbi_uc* px = data.get() + i * (channels + 1);
    const float alpha = px[channels] / 255.f;
    for (std::size_t c = 0; c < channels; ++c) flat[i * channels + c] = over_white(px[c], alpha);
  }
  data.reset();
  std::vector<std::uint8_t> resized;
  // At its own size an image is taken as it is (stb's resampling filter would blur it).
  if (static_cast<std::size_t>(width) == w && static_cast<std::size_t>(height) == h) {
    resized = std::move(flat);
  } else {
    resized.resize(h * w * channels);
    if (!stbir_resize_uint8(flat.data(), width, height, 0, resized.data(), static_cast<int>(w),
                            static_cast<int>(h), 0, static_cast<int>(channels))) {
      fail(name, ": resizing to ", h, "x", w, " failed");
    }
  }
  if (channels == 1) return resized;
  std::vector<std::uint8_t> planar(resized.size());
  for (std::size_t c = 0; c < 3; ++c)
    for (std::size_t i = 0; i < h * w; ++i) planar[c * h * w + i] = resized[3 * i + c];
  return planar;
}

Array load_image(const std::string& path, std::size_t h, std::size_t w, const ImageOptions& options) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail(path, ": file not found");
  if (std::filesystem::is_directory(path, ec)) fail(path, ": is a directory, expected an image");
  return load_image_from_memory(read_file_bytes(path, std::size_t{256} << 20), h, w, options, path);
}

Array load_image_from_memory(const std::vector<std::uint8_t>& bytes, std::size_t h, std::size_t w,
                             const ImageOptions& options, const std::string& name) {
  if (options.channels != 1 && options.channels != 3)
    fail("load_image: ", options.channels, " channels requested; expected 1 or 3");
  if (options.channels == 3 && options.normalize &&
      (options.channel_mean.size() != 3 || options.channel_std.size() != 3)) {
    fail("load_image: 3 channels need 3 means and 3 stds; received ", options.channel_mean.size(), " and ",
         options.channel_std.size());
  }
  const std::vector<std::uint8_t> pixels = decode_image(bytes, h, w, options.channels, name);
  const std::size_t plane = h * w;
  Array out = Array::from_shape({1, options.channels, h, w});
  if (options.channels == 3) {  // a colour model takes images as they are
    for (std::size_t c = 0; c < 3; ++c) {
      for (std::size_t i = 0; i < plane; ++i) {
        const float v = pixels[c * plane + i] / 255.f;
        out.data()[c * plane + i] =
            options.normalize ? (v - options.channel_mean[c]) / options.channel_std[c] : v;
      }
    }
    return out;
  }
  bool invert = options.invert == Invert::Always;
  if (options.invert == Invert::Auto) {  // mean of the outermost rows and columns
    double border = 0.0;
    std::size_t count = 0;
    for (std::size_t y = 0; y < h; ++y) {
      for (std::size_t x = 0; x < w; ++x) {
        if (y == 0 || x == 0 || y + 1 == h || x + 1 == w) {
          border += pixels[y * w + x];
          ++count;
        }
      }
    }
    invert = border / static_cast<double>(count) > 127.5;
  }
  for (std::size_t i = 0; i < plane; ++i) {
    float v = pixels[i] / 255.f;
    if (invert) v = 1.f - v;
    out.data()[i] = options.normalize ? (v - options.mean) / options.std : v;
  }
  return out;
}

void write_png(const std::string& path, const std::vector<std::uint8_t>& pixels, std::size_t width,
               std::size_t height, std::size_t channels) {
  if (channels != 1 && channels != 3) fail("write_png: ", path, ": ", channels, " channels; expected 1 or 3");
  if (width == 0 || height == 0 || pixels.size() != width * height * channels) {
    fail("write_png: ", path, ": ", pixels.size(), " values do not make a ", width, "x", height, " image of ",
         channels, " channel(s)");
  }
  std::vector<std::uint8_t> png;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<std::uint8_t>*>(context);
    out->insert(out->end(), static_cast<std::uint8_t*>(data), static_cast<std::uint8_t*>(data) + size);
  };
  if (!stbi_write_png_to_func(append, &png, static_cast<int>(width), static_cast<int>(height),
                              static_cast<int>(channels), pixels.data(),
                              static_cast<int>(width * channels))) {
    fail("write_png: ", path, ": encoding failed");
  }
  write_file_atomically(path, {{png.data(), png.size()}});
}

}  // namespace tg
