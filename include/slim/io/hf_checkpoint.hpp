// slim — a Hugging Face model folder: config.json plus model.safetensors, or shards listed by
// model.safetensors.index.json ("weight_map": tensor name → shard file). Validated in full when opened.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "slim/core/config.hpp"
#include "slim/core/error.hpp"
#include "slim/core/tensor_view.hpp"
#include "slim/io/json.hpp"
#include "slim/io/safetensors.hpp"

namespace slim::io {

/// The weights of an HF checkpoint folder. `model.safetensors` is used when present (as transformers does);
/// otherwise `model.safetensors.index.json` names the shards. Opening checks that every shard opens (see
/// safetensors_file), that every tensor the index lists is in the shard it names, that no tensor is in two
/// shards, and that no shard holds a tensor the index does not list — each failure is a slim::error naming
/// the folder's file and the tensor. Movable, not copyable.
class hf_checkpoint {
 public:
  static constexpr std::string_view single_file = "model.safetensors";
  static constexpr std::string_view index_file = "model.safetensors.index.json";

  explicit hf_checkpoint(std::string dir) : dir_(std::move(dir)) {
    while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
    struct stat st {};
    if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      throw error(dir_, "", "not a directory (expected an HF checkpoint folder)");
    const std::string single = join(single_file), index = join(index_file);
    if (exists(single)) {
      open_shard(std::string(single_file));
      for (const std::string& name : files_[0]->names()) where_.emplace(name, 0);
    } else if (exists(index)) {
      open_index(index);
    } else {
      throw error(dir_, "", "neither " + std::string(single_file) + " nor " + std::string(index_file) + " found");
    }
  }

  hf_checkpoint(const hf_checkpoint&) = delete;
  hf_checkpoint& operator=(const hf_checkpoint&) = delete;
  hf_checkpoint(hf_checkpoint&&) noexcept = default;
  hf_checkpoint& operator=(hf_checkpoint&&) noexcept = default;

  const std::string& dir() const noexcept { return dir_; }
  /// Number of tensors over all shards.
  std::size_t size() const noexcept { return where_.size(); }
  bool contains(std::string_view name) const noexcept { return where_.find(name) != where_.end(); }

  /// The header entry of `name`; a missing tensor throws slim::error naming the folder and the tensor.
  const tensor_info& info(std::string_view name) const { return file_of(name).info(name); }

  /// Tensor names over all shards, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    out.reserve(where_.size());
    for (const auto& [k, v] : where_) out.push_back(k);
    return out;
  }

  /// The file that holds `name`.
  const safetensors_file& file_of(std::string_view name) const {
    const auto it = where_.find(name);
    if (it == where_.end()) throw error(dir_, detail::tensor_place(name), "no such tensor in the checkpoint");
    return *files_[it->second];
  }

  /// The shard files, in the order they were opened.
  std::span<const std::unique_ptr<safetensors_file>> files() const noexcept { return files_; }

  /// Copies `name` into `out` (shape checked exactly, converted as in safetensors_file::read).
  template <class T, std::size_t R>
  void read(std::string_view name, tensor_view<T, R> out) const {
    file_of(name).read(name, out);
  }

  /// config.json, parsed; slim::error naming the file if it is absent, malformed or not an object.
  nlohmann::json config() const {
    const std::string path = join("config.json");
    nlohmann::json j = read_json(path);
    if (!j.is_object()) throw error(path, "", std::string("expected a JSON object, got ") + j.type_name());
    return j;
  }

 private:
  std::string join(std::string_view name) const { return dir_ + "/" + std::string(name); }

  static bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
  }

  std::size_t open_shard(const std::string& file) {
    const auto it = shard_index_.find(file);
    if (it != shard_index_.end()) return it->second;
    files_.push_back(std::make_unique<safetensors_file>(join(file)));
    shard_index_.emplace(file, files_.size() - 1);
    return files_.size() - 1;
  }

  void open_index(const std::string& index) {
    const nlohmann::json j = read_json(index);
    if (!j.is_object()) throw error(index, "", std::string("expected a JSON object, got ") + j.type_name());
    const auto wm = j.find("weight_map");
    if (wm == j.end()) throw error(index, "field weight_map", "missing");
    if (!wm->is_object())
      throw error(index, "field weight_map", std::string("expected an object, got ") + wm->type_name());
    for (const auto& [name, file] : wm->items()) {
      const std::string place = "field weight_map/" + name;
      if (!file.is_string())
        throw error(index, place, std::string("expected a shard file name, got ") + file.type_name());
      const std::string& f = file.get_ref<const std::string&>();
      if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..")
        throw error(index, place, "shard \"" + f + "\" is not a file name in the checkpoint folder");
      if (!exists(join(f)))
        throw error(join(f), detail::tensor_place(name), "shard listed by " + index + " does not exist");
      const std::size_t k = open_shard(f);
      if (!files_[k]->contains(name))
        throw error(files_[k]->path(), detail::tensor_place(name),
                    "listed in " + index + " for this shard, but the shard does not hold it");
      where_.emplace(name, k);
    }
    // Every tensor of every shard must be the one the index maps it to (one shard per tensor).
    for (std::size_t k = 0; k < files_.size(); ++k)
      for (const std::string& name : files_[k]->names()) {
        const auto it = where_.find(name);
        if (it == where_.end())
          throw error(files_[k]->path(), detail::tensor_place(name), "held by this shard but not listed in " + index);
        if (it->second != k)
          throw error(files_[k]->path(), detail::tensor_place(name),
                      "also held by shard " + files_[it->second]->path() + " (a tensor must be in one shard only)");
      }
  }

  std::string dir_;
  std::vector<std::unique_ptr<safetensors_file>> files_;
  std::map<std::string, std::size_t, std::less<>> shard_index_;
  std::map<std::string, std::size_t, std::less<>> where_;  // tensor name → index into files_
};

}  // namespace slim::io
