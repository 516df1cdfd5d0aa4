// Folders of images by class (data/image_folder.hpp): what the scan takes and skips, images read back byte
// for byte at one size and channel count, the seeded held-out split, normalization from the training images,
// and a clear error naming the file or folder for every kind of bad input the issue lists.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "data/folder_files.hpp"
#include "tapegrad.hpp"
#include "test_util.hpp"

using namespace test_util;
namespace fs = std::filesystem;

namespace {

// The error text of reading split `split` of dir.
std::string folder_error(const fs::path& dir, tg::ImageFolderOptions options = {},
                         tg::Split split = tg::Split::Train) {
  try {
    tg::ImageFolder data(dir.string(), split, std::move(options));
  } catch (const tg::Error& e) {
    return e.what();
  }
  FAIL("ImageFolder(", dir.string(), ") did not throw");
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("ImageFolder reads train/<class>/ and test/<class>/ back byte for byte, classes in sorted order") {
  TempDir dir;
  write_image_folder(dir.path / "train", {"zebra", "ant", "moth"}, 4, 6, 5, 1, 0);
  write_image_folder(dir.path / "test", {"zebra", "ant", "moth"}, 2, 6, 5, 1, 100);
  CHECK(tg::image_folder_layout(dir.path.string()) == tg::FolderLayout::Split);
  const tg::ImageFolder train(dir.path.string(), tg::Split::Train);
  REQUIRE(train.size() == 12);
  CHECK(train.class_names() == std::vector<std::string>{"ant", "moth", "zebra"});
  CHECK(train.channels() == 1);
  CHECK(train.rows() == 6);
  CHECK(train.cols() == 5);
  CHECK(train.class_counts() == std::vector<std::size_t>{4, 4, 4});
  // Written class by class as zebra (label 0 in folder_byte), ant (1), moth (2); read as ant 0, moth 1,
  // zebra 2.
  const std::vector<int> written_label{1, 2, 0};  // sorted label -> the label folder_byte was given
  std::size_t wrong = 0;
  for (std::size_t i = 0; i < train.size(); ++i) {
    const std::size_t id = folder_image_id(train.file(i));
    const std::string cls = fs::path(train.file(i)).parent_path().filename().string();
    CHECK(train.class_names()[static_cast<std::size_t>(train.label(i))] == cls);
    for (std::size_t k = 0; k < 30; ++k)
      wrong +=
          train.pixels(i)[k] != folder_byte(id, k, written_label[static_cast<std::size_t>(train.label(i))]);
  }
  CHECK(wrong == 0);
  // Round-robin over the classes: the first three examples are one of each.
  CHECK(std::set<int>{train.label(0), train.label(1), train.label(2)} == std::set<int>{0, 1, 2});
  // limit: only the first examples are decoded, one of each class first.
  const tg::ImageFolder first(dir.path.string(), tg::Split::Train, {.limit = 4});
  REQUIRE(first.size() == 4);
  CHECK(first.class_counts() == std::vector<std::size_t>{2, 1, 1});
  for (std::size_t i = 0; i < 4; ++i) CHECK(first.file(i) == train.file(i));
  const tg::ImageFolder test(dir.path.string(), tg::Split::Test);
  CHECK(test.size() == 6);
  for (std::size_t i = 0; i < test.size(); ++i) CHECK(folder_image_id(test.file(i)) >= 100);
  CHECK(contains(train.summary(), "found 12 images in 3 classes: ant 4, moth 4, zebra 4; 6x5 gray"));
}

TEST_CASE("ImageFolder normalizes each channel with its training images' mean and std, or the given ones") {
  TempDir dir;
  write_image_folder(dir.path / "train", {"a", "b"}, 3, 4, 4, 3);
  write_image_folder(dir.path / "test", {"a", "b"}, 1, 4, 4, 3);
  const tg::ImageFolder train(dir.path.string(), tg::Split::Train);
  REQUIRE(train.channels() == 3);
  std::vector<float> mean, stddev;
  tg::channel_statistics(train, mean, stddev);
  CHECK(train.channel_mean() == mean);
  CHECK(train.channel_std() == stddev);
  std::vector<float> x(train.example_size());
  train.normalized(1, x.data());
  for (std::size_t k = 0; k < x.size(); ++k) {
    const std::size_t c = k / 16;
    CHECK(x[k] == doctest::Approx((train.pixels(1)[k] / 255.f - mean[c]) / stddev[c]).epsilon(1e-5));
  }
  const tg::ImageFolder test(dir.path.string(), tg::Split::Test,
                             {.classes = train.class_names(), .mean = {0.5f, 0.5f, 0.5f}, .std = {1, 1, 2}});
  test.normalized(0, x.data());
  CHECK(x[40] == doctest::Approx((test.pixels(0)[40] / 255.f - 0.5f) / 2.f));
  CHECK(test.channel_mean() == std::vector<float>{0.5f, 0.5f, 0.5f});
}

TEST_CASE("ImageFolder converts to one size and channel count: colour when any image has it, or as asked") {
  TempDir dir;
  write_image_folder(dir.path / "train", {"gray"}, 3, 8, 8, 1, 0);
  write_image_folder(dir.path / "train", {"rgb"}, 3, 8, 8, 3, 10);
  const tg::ImageFolder data(dir.path.string(), tg::Split::Train);
  CHECK(data.channels() == 3);  // one colour image is enough
  // A gray image as RGB: its value thrice.
  std::size_t gray_index = 0;
  while (data.class_names()[static_cast<std::size_t>(data.label(gray_index))] != "gray") ++gray_index;
  const std::uint8_t* px = data.pixels(gray_index);
  CHECK(std::equal(px, px + 64, px + 64));
  CHECK(std::equal(px, px + 64, px + 128));
  const tg::ImageFolder small(dir.path.string(), tg::Split::Train, {.rows = 4, .cols = 6, .channels = 1});
  CHECK(small.channels() == 1);
  CHECK(small.rows() == 4);
  CHECK(small.cols() == 6);
  CHECK(small.size() == 6);
}

TEST_CASE("A folder of class folders holds out a seeded share of each class for testing (--val-split)") {
  TempDir dir;
  write_image_folder(dir.path, {"cat", "dog", "eel"}, 10, 4, 4);
  write_image_folder(dir.path, {"fox"}, 1, 4, 4, 1, 50);  // one image: kept for training
  CHECK(tg::image_folder_layout(dir.path.string()) == tg::FolderLayout::Flat);
  const tg::ImageFolderOptions options{.val_split = 0.2, .seed = 7};
  const tg::ImageFolder train(dir.path.string(), tg::Split::Train, options);
  const tg::ImageFolder test(dir.path.string(), tg::Split::Test, options);
  CHECK(train.class_counts() == std::vector<std::size_t>{8, 8, 8, 1});
  const std::vector<std::size_t> counts = test.class_counts();
  REQUIRE(counts.size() == 4);
  CHECK(counts[0] == 2);
  CHECK(counts[1] == 2);
  CHECK(counts[2] == 2);
  CHECK(counts[3] == 0);
  std::set<std::string> train_files, test_files;
  for (std::size_t i = 0; i < train.size(); ++i) train_files.insert(train.file(i));
  for (std::size_t i = 0; i < test.size(); ++i) test_files.insert(test.file(i));
  for (const std::string& f : test_files) CHECK(train_files.count(f) == 0);
  CHECK(train_files.size() + test_files.size() == 31);
  // The same seed holds out the same images; another seed others.
  const tg::ImageFolder again(dir.path.string(), tg::Split::Test, options);
  const tg::ImageFolder other(dir.path.string(), tg::Split::Test, {.val_split = 0.2, .seed = 8});
  std::set<std::string> again_files, other_files;
  for (std::size_t i = 0; i < again.size(); ++i) again_files.insert(again.file(i));
  for (std::size_t i = 0; i < other.size(); ++i) other_files.insert(other.file(i));
  CHECK(again_files == test_files);
  CHECK(other_files != test_files);
  // Without a share, both splits are the whole folder (evaluating a folder).
  CHECK(tg::ImageFolder(dir.path.string(), tg::Split::Test).size() == 31);
}

TEST_CASE(
    "ImageFolder skips hidden files and folders, reports other files, and keeps names with spaces and "
    "UTF-8") {
  TempDir dir;
  const fs::path train = dir.path / "train";
  write_image_folder(train, {"chat noir", "\xc3\xa9l\xc3\xa9phant"}, 2, 4, 4);  // "éléphant"
  write_image_folder(dir.path / "test", {"chat noir"}, 1, 4, 4, 1, 20);
  write_bytes((train / ".DS_Store").string(), {0, 1, 2});
  write_bytes((train / "chat noir" / ".hidden.png").string(), {0, 1, 2});
  fs::create_directories(train / ".ipynb_checkpoints");
  write_folder_png((train / ".ipynb_checkpoints" / "img_9.png").string(), 9, 4, 4, 1, 0);
  fs::create_directories(train / "__MACOSX");
  write_bytes((train / "chat noir" / "notes.txt").string(), {'h', 'i'});
  write_bytes((train / "README").string(), {'h', 'i'});
  fs::create_directories(train / "chat noir" / "more pics");  // sub-folders belong to the class
  write_folder_png((train / "chat noir" / "more pics" / "img_30 copy.PNG").string(), 30, 4, 4, 1, 0);
  const tg::ImageFolder data(dir.path.string(), tg::Split::Train);
  CHECK(data.class_names() == std::vector<std::string>{"chat noir", "\xc3\xa9l\xc3\xa9phant"});
  CHECK(data.class_counts() == std::vector<std::size_t>{3, 2});
  REQUIRE(data.not_images().size() == 2);
  CHECK(contains(data.not_images()[0], "README"));
  CHECK(contains(data.not_images()[1], "notes.txt"));
  CHECK(contains(data.summary(), "skipped 2 file(s) that are not images or not in a class folder"));
  // The test split labels by the training classes, even when it has fewer, and lists the ones it has.
  const tg::ImageFolder test(dir.path.string(), tg::Split::Test, {.classes = data.class_names()});
  CHECK(test.size() == 1);
  CHECK(test.label(0) == 0);
  CHECK(contains(test.summary(), "found 1 images in 1 of the model's 2 classes: chat noir 1;"));
  // A class name with '/' (Fashion-MNIST's "T-shirt/top") is the folder "T-shirt top" or "T-shirt_top".
  const tg::ImageFolder named(dir.path.string(), tg::Split::Test, {.classes = {"x", "chat/noir"}});
  CHECK(named.label(0) == 1);
}

TEST_CASE("ImageFolder ends at a symbolic-link loop and reports a file link loop as a bad image") {
  TempDir dir;
  const fs::path train = dir.path / "train";
  write_image_folder(train, {"a", "b"}, 2, 4, 4);
  fs::create_directory_symlink(train / "a", train / "a" / "again");  // a -> a/again -> a ...
  fs::create_directory_symlink(train, train / "b" / "up");           // b/up/b/up/...
  fs::create_directory_symlink(train / "a", train / "b" / "to a");   // class a's images, not b's
  fs::create_directories(dir.path / "elsewhere");
  write_folder_png((dir.path / "elsewhere" / "img_77.png").string(), 77, 4, 4, 1, 0);
  fs::create_directory_symlink(dir.path / "elsewhere", train / "b" / "more");  // a folder outside: b's
  const tg::ImageFolder data(dir.path.string(), tg::Split::Train);
  CHECK(data.class_counts() == std::vector<std::size_t>{2, 3});  // no image in two classes, none twice
  fs::create_symlink(train / "a" / "x.png", train / "a" / "y.png");
  fs::create_symlink(train / "a" / "y.png", train / "a" / "x.png");
  const std::string error = folder_error(dir.path);
  CHECK(contains(error, "x.png"));
  CHECK(contains(error, "--skip-bad-images"));
}

TEST_CASE("Bad image folders: a clear error naming the folder, the file and what to do") {
  TempDir dir;
  SUBCASE("an empty folder") {
    fs::create_directories(dir.path / "empty");
    CHECK(contains(folder_error(dir.path / "empty"), "not a folder of images by class"));
    CHECK(contains(folder_error(dir.path / "missing"), "not a folder of images by class"));
  }
  SUBCASE("images directly in train/, no class folders") {
    fs::create_directories(dir.path / "train");
    write_folder_png((dir.path / "train" / "img_0.png").string(), 0, 4, 4, 1, 0);
    write_image_folder(dir.path / "test", {"a", "b"}, 1, 4, 4);
    CHECK(tg::image_folder_layout(dir.path.string()) == tg::FolderLayout::Split);
    CHECK(contains(folder_error(dir.path), "train: found no class folders (1 file(s) directly in it)"));
  }
  SUBCASE("train/ without test/ (val/ and validation/ are test folders too)") {
    write_image_folder(dir.path / "train", {"a", "b"}, 2, 4, 4);
    CHECK(contains(folder_error(dir.path, {}, tg::Split::Test),
                   "has a train/ folder but no test/ (nor val/ or validation/) beside it"));
    write_image_folder(dir.path / "val", {"a", "b"}, 1, 4, 4, 1, 10);
    CHECK(tg::ImageFolder(dir.path.string(), tg::Split::Test).size() == 2);
  }
  SUBCASE("a pipe named like an image is reported, not read (reading would block)") {
    write_image_folder(dir.path / "train", {"a", "b"}, 2, 4, 4);
    REQUIRE(::mkfifo((dir.path / "train" / "a" / "pipe.png").c_str(), 0600) == 0);
    const tg::ImageFolder data(dir.path.string(), tg::Split::Train);
    CHECK(data.size() == 4);
    REQUIRE(data.not_images().size() == 1);
    CHECK(contains(data.not_images()[0], "pipe.png"));
  }
  SUBCASE("one class") {
    write_image_folder(dir.path / "train", {"only"}, 3, 4, 4);
    const std::string error = folder_error(dir.path);
    CHECK(contains(error, "found one class folder ('only'); a classifier needs at least two"));
  }
  SUBCASE("a class folder without images") {
    write_image_folder(dir.path / "train", {"a", "c"}, 2, 4, 4);
    fs::create_directories(dir.path / "train" / "b");
    write_bytes((dir.path / "train" / "b" / "list.csv").string(), {'1'});
    const std::string error = folder_error(dir.path);
    CHECK(contains(error, "the class 'b' has no images (1 other file(s), none .png, .jpg, .jpeg or .bmp)"));
  }
  SUBCASE("mixed sizes without a size") {
    write_image_folder(dir.path / "train", {"a"}, 2, 4, 4);
    write_image_folder(dir.path / "train", {"b"}, 1, 5, 7, 1, 10);
    const std::string error = folder_error(dir.path);
    CHECK(contains(error,
                   "the images have 2 different sizes (4x4 (2), 5x7 (1)); choose one with --image-size HxW"));
    CHECK(tg::ImageFolder(dir.path.string(), tg::Split::Train, {.rows = 6, .cols = 6}).size() == 3);
  }
  SUBCASE("a test class the training set does not have (a 10-class model on a 12-class folder)") {
    std::vector<std::string> twelve;
    for (int c = 0; c < 12; ++c) twelve.push_back("class" + std::to_string(c));
    write_image_folder(dir.path / "test", twelve, 1, 4, 4);
    const std::vector<std::string> ten(twelve.begin(), twelve.begin() + 10);
    const std::string error = folder_error(dir.path, {.classes = ten}, tg::Split::Test);
    CHECK(contains(error, "has 12 classes, 2 of them unknown to the model's 10"));
    CHECK(contains(error, "class10, class11"));
  }
  // Unreadable: a dangling link (chmod 000 does not stop root, who runs CI).
  SUBCASE("an unreadable file, a truncated PNG, a 0-byte JPEG, a 20000x20000 PNG header") {
    write_image_folder(dir.path / "train", {"a", "b"}, 3, 4, 4);
    const std::string good = read_text((dir.path / "train" / "a" / "img_0.png").string());
    const fs::path b = dir.path / "train" / "b";
    fs::create_symlink(dir.path / "nowhere.png", b / "dangling.png");
    write_bytes((b / "cut.png").string(), std::vector<std::uint8_t>(good.begin(), good.begin() + 40));
    write_bytes((b / "empty.jpg").string(), {});
    write_bytes((b / "huge.png").string(),
                {0x89, 'P',  'N',  'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0,
                 0,    0x4e, 0x20, 0,   0,    0x4e, 0x20, 8,    0, 0, 0, 0,  0,   0,   0,   0});
    const std::string error = folder_error(dir.path);
    CHECK(contains(error, (b / "cut.png").string() + ": truncated PNG"));  // the first, in path order
    CHECK(contains(error, "(and 3 more bad image(s))"));
    CHECK(contains(error, "--skip-bad-images"));
    const tg::ImageFolder data(dir.path.string(), tg::Split::Train, {.skip_bad_images = true});
    CHECK(data.size() == 6);
    REQUIRE(data.bad_images().size() == 4);
    CHECK(contains(data.bad_images()[0], "cut.png: truncated PNG"));
    CHECK(contains(data.bad_images()[1], "dangling.png"));
    CHECK(contains(data.bad_images()[2], "empty.jpg: empty file"));
    CHECK(contains(data.bad_images()[3], "huge.png: image is 20000x20000, larger than 16384 pixels a side"));
    CHECK(contains(data.summary(), "skipped 4 bad image(s) (--skip-bad-images"));
  }
  SUBCASE("every image bad") {
    fs::create_directories(dir.path / "train" / "a");
    fs::create_directories(dir.path / "train" / "b");
    write_bytes((dir.path / "train" / "a" / "x.png").string(), {1, 2, 3});
    write_bytes((dir.path / "train" / "b" / "y.bmp").string(), {1, 2, 3});
    CHECK(contains(folder_error(dir.path, {.skip_bad_images = true}), "none of its 2 images could be read"));
  }
  SUBCASE("a held-out share with train/ and test/ folders") {
    write_image_folder(dir.path / "train", {"a", "b"}, 2, 4, 4);
    CHECK(contains(folder_error(dir.path, {.val_split = 0.2}), "--val-split is for one folder of classes"));
  }
}
