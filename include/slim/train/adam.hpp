// slim — train::adam: Adam / AdamW over a module's parameters with PyTorch's semantics (the adam_step and
// adamw_step kernels), parameter groups with their own hyper-parameters, and a learning-rate scale for
// schedules.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "slim/backend/common.hpp"
#include "slim/backend/kernels.hpp"
#include "slim/nn/parameter.hpp"

namespace slim::train {

/// Adam (L2 added to the gradient, torch.optim.Adam) or AdamW (decoupled decay, torch.optim.AdamW).
enum class adam_variant { adam, adamw };

/// Adam over the trainable parameters of the modules attached to it. Each parameter takes the settings of
/// the first group whose predicate accepts it, else the defaults. Moments start at zero; the step count is
/// shared (PyTorch keeps one per parameter, but they advance together).
template <class Backend, class T = float>
class adam {
 public:
  using kernels_type = kernels<Backend>;
  using predicate = std::function<bool(const nn::parameter<T>&)>;

  explicit adam(backend::adam_config defaults = {}, adam_variant variant = adam_variant::adam)
      : defaults_(defaults), variant_(variant) {}

  /// Settings for the parameters `select` accepts (groups are tried in the order added). Add groups before
  /// attaching modules.
  void add_group(predicate select, backend::adam_config cfg) { groups_.push_back({std::move(select), cfg}); }

  /// Registers every trainable parameter of `module` (the module must outlive the optimiser).
  template <class Module>
  void attach(Module& mod) {
    mod.visit_parameters([&](nn::parameter<T>& p) {
      if (!p.trainable) return;
      slot s;
      s.param = &p;
      s.cfg = defaults_;
      for (const auto& g : groups_)
        if (g.first(p)) {
          s.cfg = g.second;
          break;
        }
      s.m = tensor<T, 1>({p.size()});
      s.v = tensor<T, 1>({p.size()});
      slots_.push_back(std::move(s));
    });
  }

  /// One update of every attached parameter from its current gradient.
  void step(const Backend& be) {
    ++step_;
    for (slot& s : slots_) {
      backend::adam_config cfg = s.cfg;
      cfg.lr = static_cast<float>(static_cast<double>(cfg.lr) * lr_scale_);
      if (variant_ == adam_variant::adam)
        kernels_type::adam_step(be, s.param->vector(), vector_view<const T>(s.param->grad.view()), s.m.view(),
                                s.v.view(), cfg, step_);
      else
        kernels_type::adamw_step(be, s.param->vector(), vector_view<const T>(s.param->grad.view()), s.m.view(),
                                 s.v.view(), cfg, step_);
    }
  }

  /// Calls f(param, m, v) for every attached parameter and its moments (checkpoints save and restore them).
  template <class F>
  void visit_state(F&& f) {
    for (slot& s : slots_) f(*s.param, s.m, s.v);
  }
  /// Sets the step count (a resumed run continues the bias corrections where it stopped).
  void set_steps(std::int64_t steps) noexcept { step_ = steps; }

  /// Multiplies every group's learning rate (1 by default), for schedules.
  void set_lr_scale(double s) noexcept { lr_scale_ = s; }
  std::int64_t steps() const noexcept { return step_; }
  std::size_t size() const noexcept { return slots_.size(); }
  /// The settings a parameter was given (nullptr when not attached).
  const backend::adam_config* config_of(const nn::parameter<T>& p) const noexcept {
    for (const slot& s : slots_)
      if (s.param == &p) return &s.cfg;
    return nullptr;
  }

 private:
  struct slot {
    nn::parameter<T>* param = nullptr;
    backend::adam_config cfg;
    tensor<T, 1> m, v;
  };
  backend::adam_config defaults_;
  adam_variant variant_;
  std::vector<std::pair<predicate, backend::adam_config>> groups_;
  std::vector<slot> slots_;
  std::int64_t step_ = 0;
  double lr_scale_ = 1.0;
};

}  // namespace slim::train
