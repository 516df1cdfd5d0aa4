// Scanning a folder of images by class: which layout it has (train/ and test/, or classes at the top), and
// the image files of each class folder in a fixed order. ImageFolder (image_folder.cpp) labels, splits and
// decodes what this finds.
#include "data/image_folder.hpp"

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "core/base/error.hpp"

namespace tg {
namespace fs = std::filesystem;
namespace {

bool hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return name.empty() || name[0] == '.' || name == "__MACOSX";
}

bool image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp";
}

bool is_folder(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);  // follows symbolic links; false on a loop or a dangling link
}

// The image files under a class folder, sorted; other files go to not_images. `seen` holds the real paths of
// the folders scanned so far (the split's root and every class folder first): a linked folder already seen
// (a link loop, a link up the tree or to another class) is skipped, so no image lands in two classes.
std::vector<std::string> images_in(const fs::path& folder, std::set<fs::path>& seen,
                                   std::vector<std::string>& not_images) {
  std::vector<std::string> images;
  std::vector<fs::path> pending{folder};
  while (!pending.empty()) {  // depth-first
    const fs::path dir = pending.back();
    pending.pop_back();
    std::error_code ec;
    for (fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
         !ec && it != end; it.increment(ec)) {
      const fs::path p = it->path();
      if (hidden(p)) continue;
      std::error_code status_ec;
      const fs::file_status status = fs::status(p, status_ec);  // follows links
      if (!status_ec && fs::is_directory(status)) {
        std::error_code canonical_ec;
        const fs::path real = fs::canonical(p, canonical_ec);
        if (!canonical_ec && seen.insert(real).second) pending.push_back(p);
      } else if (image_extension(p) && (status_ec || fs::is_regular_file(status))) {
        images.push_back(p.string());  // a dangling link or a link loop too: reading it names the problem
      } else {
        not_images.push_back(
            p.string());  // including a pipe or a device named *.png, which reading would block on
      }
    }
    if (ec) fail(dir.string(), ": cannot list the folder (", ec.message(), ")");
  }
  std::sort(images.begin(), images.end());
  return images;
}

}  // namespace

FolderLayout image_folder_layout(const std::string& dir) {
  if (is_folder(fs::path(dir) / "train") || is_folder(fs::path(dir) / "test")) return FolderLayout::Split;
  std::error_code ec;
  if (!is_folder(dir)) return FolderLayout::None;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (!hidden(it->path()) && is_folder(it->path())) return FolderLayout::Flat;
  return FolderLayout::None;
}

std::string image_folder_test_root(const std::string& dir) {
  for (const char* name : {"test", "val", "validation"})
    if (is_folder(fs::path(dir) / name)) return (fs::path(dir) / name).string();
  fail(dir, " has a train/ folder but no test/ (nor val/ or validation/) beside it: put the test images in ",
       dir, "/test/<class>/, or put the classes in one folder (", dir, "/<class>/) and use --val-split F");
}

std::string image_folder_help(const std::string& dir) {
  return "a folder of images by class is " + dir + "/train/<class>/*.png|jpg|bmp and " + dir +
         "/test/<class>/... (or val/), or " + dir + "/<class>/... with --val-split F";
}

ImageFolderScan scan_image_folder(const std::string& root) {
  if (!is_folder(root)) fail(root, ": no such folder");
  ImageFolderScan scan;
  std::vector<fs::path> classes;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path p = it->path();
    if (hidden(p)) continue;
    if (is_folder(p))
      classes.push_back(p);
    else
      scan.not_images.push_back(p.string());
  }
  if (ec) fail(root, ": cannot list the folder (", ec.message(), ")");
  if (classes.empty()) {
    fail(root, ": found no class folders (", scan.not_images.size(),
         " file(s) directly in it); put each class's images in a folder named after the class: ",
         image_folder_help(root));
  }
  std::sort(classes.begin(), classes.end());
  std::set<fs::path> seen{fs::weakly_canonical(root)};
  for (const fs::path& folder : classes) seen.insert(fs::weakly_canonical(folder));
  for (const fs::path& folder : classes) {
    const std::size_t others_before = scan.not_images.size();
    const std::vector<std::string> images = images_in(folder, seen, scan.not_images);
    if (images.empty()) {
      const std::size_t others = scan.not_images.size() - others_before;
      fail(folder.string(), ": the class '", folder.filename().string(), "' has no images",
           others ? " (" + std::to_string(others) + " other file(s), none .png, .jpg, .jpeg or .bmp)" : "",
           "; remove the folder or add its images");
    }
    const int label = static_cast<int>(scan.class_names.size());
    scan.class_names.push_back(folder.filename().string());
    scan.files.insert(scan.files.end(), images.begin(), images.end());
    scan.labels.insert(scan.labels.end(), images.size(), label);
  }
  std::sort(scan.not_images.begin(), scan.not_images.end());
  return scan;
}

}  // namespace tg
