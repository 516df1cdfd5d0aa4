// Checkpoints: round trips, optimizer state, and every kind of bad file, each with a clear tg::Error.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tapegrad.hpp"
#include "test_util.hpp"

namespace fs = std::filesystem;
using namespace test_util;
using tg::Array;
using tg::Tensor;

namespace {

tg::Sequential small_model() { return tg::Sequential(tg::Linear(4, 3), tg::ReLU(), tg::Linear(3, 2)); }

// A safetensors file from a raw header string and data bytes.
void write_raw(const std::string& path, const std::string& header, std::size_t data_bytes) {
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t n = header.size();
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << header;
  out << std::string(data_bytes, '\0');
}

}  // namespace

TEST_CASE("save then load restores every parameter bit for bit, with optimizer state and metadata") {
  TempDir dir;
  tg::manual_seed(1);
  tg::Sequential a = small_model();
  tg::SGD opt(a.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  tg::cross_entropy(a(Tensor(xt::ones<float>({2, 4}))), {0, 1}).backward();
  opt.step();
  tg::save(a, dir.file("m.safetensors"), {opt.state(), {{"epoch", "3"}}});

  tg::manual_seed(2);
  tg::Sequential b = small_model();
  tg::SGD opt_b(b.parameters(), {.lr = 0.1f, .momentum = 0.9f});
  const tg::TrainingState state = tg::load(b, dir.file("m.safetensors"));
  opt_b.load_state(state.optimizer);
  CHECK(state.metadata.at("epoch") == "3");
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CHECK(pa[i].first == pb[i].first);
    CHECK(pa[i].second.value() == pb[i].second.value());
  }
  REQUIRE(opt_b.state().size() == opt.state().size());
  for (std::size_t i = 0; i < opt.state().size(); ++i) CHECK(opt_b.state()[i].second == opt.state()[i].second);
}

TEST_CASE("load rejects a checkpoint of another architecture and leaves the model unchanged") {
  TempDir dir;
  tg::Sequential other(tg::Linear(4, 5), tg::ReLU(), tg::Linear(5, 2));
  tg::save(other, dir.file("other.safetensors"));
  tg::Sequential model = small_model();
  const Array before = model.at<tg::Linear>(0).weight.value();
  CHECK_THROWS_WITH_AS(tg::load(model, dir.file("other.safetensors")),
                       doctest::Contains("tensor '0.weight' has shape [5, 4], the model expects [3, 4]"), tg::Error);
  CHECK(model.at<tg::Linear>(0).weight.value() == before);

  tg::Sequential fewer(tg::Linear(4, 3));
  tg::save(fewer, dir.file("fewer.safetensors"));
  CHECK_THROWS_WITH_AS(tg::load(model, dir.file("fewer.safetensors")), doctest::Contains("missing tensor '2.weight'"),
                       tg::Error);
  tg::Sequential more(tg::Linear(4, 3), tg::ReLU(), tg::Linear(3, 2), tg::Linear(2, 2));
  tg::save(more, dir.file("more.safetensors"));
  CHECK_THROWS_WITH_AS(tg::load(model, dir.file("more.safetensors")), doctest::Contains("unexpected tensor '3."),
                       tg::Error);
}

TEST_CASE("load rejects files that are not valid safetensors, naming the file and the problem") {
  TempDir dir;
  tg::Sequential model = small_model();
  const std::string path = dir.file("bad.safetensors");
  CHECK_THROWS_WITH_AS(tg::load(model, dir.file("missing.safetensors")), doctest::Contains("file not found"), tg::Error);
  CHECK_THROWS_WITH_AS(tg::load(model, dir.path.string()), doctest::Contains("is a directory"), tg::Error);
  std::ofstream(path) << "hello";
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("not a safetensors file"), tg::Error);
  std::ofstream(path) << "PNG\x89 this is some other file format entirely";
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("header length"), tg::Error);
  write_raw(path, "{\"a\": {\"dtype\": \"F32\", ", 0);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("malformed safetensors header"), tg::Error);
  write_raw(path, R"({"0.weight": {"dtype": "F16", "shape": [3, 4], "data_offsets": [0, 24]}})", 24);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("dtype \"F16\", tapegrad reads F32 only"), tg::Error);
  write_raw(path, R"({"0.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}})", 20);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("outside the 20 data bytes"), tg::Error);
  write_raw(path, R"({"0.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 40]}})", 48);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("needs 48 bytes"), tg::Error);
  write_raw(path,
            R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}, "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
            24);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("overlap"), tg::Error);
  write_raw(path, R"({"a": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}})", 16);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("not all sizes"), tg::Error);
  write_raw(path, R"([1, 2, 3])", 0);
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("not a JSON object"), tg::Error);
  // header length far beyond the file
  std::ofstream out(path, std::ios::binary);
  const std::uint64_t huge = 1ull << 40;
  out.write(reinterpret_cast<const char*>(&huge), 8);
  out << "{}";
  out.close();
  CHECK_THROWS_WITH_AS(tg::load(model, path), doctest::Contains("header length 1099511627776"), tg::Error);
}

TEST_CASE("a save that fails leaves the previous checkpoint intact and says so") {
  TempDir dir;
  tg::manual_seed(4);
  tg::Sequential model = small_model();
  const std::string path = dir.file("keep.safetensors");
  tg::save(model, path);
  const auto size_before = fs::file_size(path);
  CHECK_THROWS_WITH_AS(tg::save(model, dir.file("no/such/folder/x.safetensors")), doctest::Contains("cannot write"),
                       tg::Error);
  if (::geteuid() != 0) {  // root ignores permissions
    fs::permissions(dir.path, fs::perms::owner_write, fs::perm_options::remove);
    CHECK_THROWS_WITH_AS(tg::save(model, path), doctest::Contains("unchanged"), tg::Error);
    fs::permissions(dir.path, fs::perms::owner_write, fs::perm_options::add);
  }
  CHECK(fs::file_size(path) == size_before);
  tg::Sequential again = small_model();
  CHECK_NOTHROW(tg::load(again, path));
  for (const auto& entry : fs::directory_iterator(dir.path)) {  // no temp file left behind
    CHECK(entry.path().filename().string().find(".tmp.") == std::string::npos);
  }
}

TEST_CASE("dump_npy writes a numpy .npy file") {
  TempDir dir;
  const Array a = {{1.f, 2.f, 3.f}, {4.f, 5.f, 6.f}};
  tg::dump_npy(a, dir.file("a.npy"));
  std::ifstream in(dir.file("a.npy"), std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(bytes.substr(0, 6) == "\x93NUMPY");
  const std::size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  CHECK((10 + header_len) % 64 == 0);
  CHECK(bytes.find("'shape': (2, 3)") != std::string::npos);
  REQUIRE(bytes.size() == 10 + header_len + 6 * sizeof(float));
  float last = 0.f;
  std::memcpy(&last, bytes.data() + bytes.size() - 4, 4);
  CHECK(last == 6.f);
  tg::dump_npy(Array{7.f, 8.f}, dir.file("b.npy"));
  std::ifstream in_b(dir.file("b.npy"), std::ios::binary);
  const std::string bytes_b((std::istreambuf_iterator<char>(in_b)), std::istreambuf_iterator<char>());
  CHECK(bytes_b.find("'shape': (2,)") != std::string::npos);
}

TEST_CASE("SGD rejects invalid options; schedules follow their formulas") {
  Tensor w(Array{1.f}, true);
  CHECK_THROWS_AS(tg::SGD({w}, {.lr = -1.f}), tg::Error);
  CHECK_THROWS_AS(tg::SGD({w}, {.lr = std::nanf("")}), tg::Error);
  CHECK_THROWS_WITH_AS(tg::SGD({w}, {.lr = 0.1f, .momentum = 0.f, .nesterov = true}),
                       doctest::Contains("nesterov needs momentum > 0"), tg::Error);
  tg::SGD opt({w}, {.lr = 0.1f});
  tg::StepLR step(opt, 2, 0.5f);
  step.step();
  CHECK(opt.lr() == doctest::Approx(0.1f));
  step.step();
  CHECK(opt.lr() == doctest::Approx(0.05f));
  tg::SGD opt2({w}, {.lr = 0.2f});
  {
    tg::SGD opt3({w}, {.lr = 0.2f});
    tg::CosineLR warm(opt3, 10, 0.f, 4);
    CHECK(opt3.lr() == doctest::Approx(0.05f));  // the first step already warms up: base / 4
  }
  tg::CosineLR cosine(opt2, 10, 0.f);
  cosine.set_step(5);
  CHECK(opt2.lr() == doctest::Approx(0.1f));
  cosine.set_step(10);
  CHECK(opt2.lr() == doctest::Approx(0.f));
}
