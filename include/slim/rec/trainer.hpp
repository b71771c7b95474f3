// slim — the training loop of a sequential recommender: epochs over seeded shuffles of the users in
// batches, Adam, validation every few epochs with early stopping on a chosen metric, the best epoch's
// parameters restored before the test evaluation. Everything random is keyed by the seed (shuffles by
// epoch, negatives by epoch and user, dropout by step and layer), so a run is reproduced exactly by its
// seed at any thread count; with a checkpoint file a run interrupted at any point resumes from its last
// validation and ends exactly as an uninterrupted one. Presets for the published settings are at the end.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "slim/backend/common.hpp"
#include "slim/core/philox.hpp"
#include "slim/io/atomic_file.hpp"
#include "slim/nn/context.hpp"
#include "slim/nn/parameter.hpp"
#include "slim/rec/evaluate.hpp"
#include "slim/rec/gru4rec.hpp"
#include "slim/rec/sasrec.hpp"
#include "slim/train/adam.hpp"
#include "slim/train/clip.hpp"

namespace slim::rec {

/// The training settings (the model's sizes are its own config).
struct train_config {
  index_t epochs = 200;      ///< at most this many epochs
  index_t batch_size = 128;  ///< users per batch
  backend::adam_config adam{.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-8f, .weight_decay = 0.0f};
  float l2_emb = 0.0f;      ///< L2 on embedding tables, added to their gradient (the original's l2_emb)
  double clip_norm = 0.0;   ///< clip the global gradient norm to this (0: no clipping)
  std::uint64_t seed = 42;  ///< shuffles, negatives and dropout (the model's initialisation has its own)
  index_t eval_every = 20;  ///< validate every this many epochs (0: never; the last parameters are tested)
  index_t patience = 0;     ///< stop after this many validations without improvement (0: never early)
  std::string select_metric = "ndcg@10";  ///< the validation metric that picks the best epoch
  bool select_on_full = false;            ///< pick by full ranking instead of the sampled protocol
  evaluation_options eval;                ///< metrics, negatives, sampler seed
  /// A file to keep the run's state in (empty: none): written atomically after every validation (every
  /// epoch without validation) and at the end; when it exists at the start, the run resumes from it. It
  /// must come from the same model (parameter names and shapes) and the same settings, or fit() throws.
  std::string checkpoint;
  /// Also evaluate the test stage at every validation, for learning curves and time-to-quality figures
  /// (it never chooses anything: the epoch is picked on validation only).
  bool trace_test = false;
};

/// What the progress callback receives: after every epoch, and after every validation.
struct progress_event {
  index_t epoch = 0;                                           ///< 1-based
  index_t epochs = 0;                                          ///< the configured maximum
  double loss = 0;                                             ///< mean training loss of the epoch
  double epoch_seconds = 0;                                    ///< training time of the epoch
  const evaluation_report* valid = nullptr;                    ///< set on validation epochs
  const evaluation_report* test = nullptr;                     ///< set on validation epochs with trace_test
  double selected = std::numeric_limits<double>::quiet_NaN();  ///< the selection metric's value then
  bool improved = false;
};

/// One point of the learning curve: the mean of each metric (evaluation_options::metrics order) at a
/// validation epoch; the test means only with trace_test. Seconds are cumulative up to that point.
struct curve_point {
  index_t epoch = 0;
  double train_seconds = 0, eval_seconds = 0;
  std::vector<double> valid_sampled, valid_full, test_sampled, test_full;
};

/// The outcome of fit().
struct train_report {
  evaluation_report test;                  ///< at the restored best parameters
  std::optional<evaluation_report> valid;  ///< the best validation (none when eval_every == 0)
  index_t epochs_run = 0;
  index_t best_epoch = 0;             ///< the epoch whose parameters were tested
  double train_seconds = 0;           ///< time in training steps only
  double eval_seconds = 0;            ///< time in validation
  std::vector<double> epoch_loss;     ///< mean training loss per epoch
  std::vector<double> epoch_seconds;  ///< training seconds per epoch
  std::vector<curve_point> curve;     ///< every validation (and, with trace_test, the test beside it)
};

/// Users with at least one training position, in index order.
inline std::vector<index_t> trainable_users(const sequence_split& split) {
  std::vector<index_t> u;
  for (index_t i = 0; i < split.num_users(); ++i)
    if (split.train[static_cast<std::size_t>(i)].size() >= 2) u.push_back(i);
  return u;
}

/// The order of users in epoch `epoch` (1-based): a Fisher–Yates shuffle from a Philox stream keyed by
/// (seed, epoch).
inline std::vector<index_t> epoch_order(std::span<const index_t> users, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<index_t> order(users.begin(), users.end());
  const philox_block b = philox4x32_10(
      philox_block{{static_cast<std::uint32_t>(epoch), static_cast<std::uint32_t>(epoch >> 32), 0x5f5e7u, 0u}},
      static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  philox_stream rng(static_cast<std::uint64_t>(b.v[0]) | (static_cast<std::uint64_t>(b.v[1]) << 32));
  for (std::size_t i = order.size(); i > 1; --i)
    std::swap(order[i - 1], order[rng.below(static_cast<std::uint32_t>(i))]);
  return order;
}

namespace detail {

/// The means of an evaluation's metrics, in order (empty when the protocol was not evaluated).
inline std::vector<double> means(const metrics::evaluation& e) {
  std::vector<double> m;
  for (std::size_t i = 0; i < e.names.size(); ++i) m.push_back(e.mean(i));
  return m;
}

/// Byte buffer of a checkpoint: fixed-width fields in the writing machine's byte order (a checkpoint is
/// read back where it was written), every array prefixed by its length.
class checkpoint_writer {
 public:
  void u64(std::uint64_t v) { raw(&v, sizeof v); }
  void f64(double v) { raw(&v, sizeof v); }
  void text(const std::string& t) {
    u64(t.size());
    bytes_ += t;
  }
  template <class T>
  void array(const T* p, std::size_t n) {
    u64(n);
    raw(p, n * sizeof(T));
  }
  const std::string& bytes() const noexcept { return bytes_; }

 private:
  void raw(const void* p, std::size_t n) { bytes_.append(static_cast<const char*>(p), n); }
  std::string bytes_;
};

/// Reads what checkpoint_writer wrote; any mismatch throws slim::error naming the file and the byte offset.
class checkpoint_reader {
 public:
  checkpoint_reader(std::string bytes, std::string path) : bytes_(std::move(bytes)), path_(std::move(path)) {}
  std::uint64_t u64() {
    std::uint64_t v = 0;
    raw(&v, sizeof v);
    return v;
  }
  double f64() {
    double v = 0;
    raw(&v, sizeof v);
    return v;
  }
  std::string text() {
    const std::uint64_t n = u64();
    need(n);
    std::string t = bytes_.substr(pos_, n);
    pos_ += n;
    return t;
  }
  /// An array of exactly n elements.
  template <class T>
  void array(T* p, std::size_t n, const std::string& what) {
    const std::size_t at = pos_;
    const std::uint64_t m = u64();
    if (m != n)
      throw error(path_, "offset " + std::to_string(at),
                  what + " has " + std::to_string(m) + " values in the checkpoint, " + std::to_string(n) + " here");
    raw(p, n * sizeof(T));
  }
  /// An array of any length (bounded by the bytes left).
  template <class T>
  std::vector<T> vector() {
    const std::uint64_t n = u64();
    if (n > (bytes_.size() - pos_) / sizeof(T))
      throw error(path_, "offset " + std::to_string(pos_), "the checkpoint ends early (truncated or not a checkpoint)");
    std::vector<T> v(n);
    raw(v.data(), n * sizeof(T));
    return v;
  }
  void expect_end() const {
    if (pos_ != bytes_.size())
      throw error(path_, "offset " + std::to_string(pos_), "trailing bytes after the checkpoint's last field");
  }

 private:
  void need(std::uint64_t n) const {
    if (n > bytes_.size() - pos_)
      throw error(path_, "offset " + std::to_string(pos_), "the checkpoint ends early (truncated or not a checkpoint)");
  }
  void raw(void* p, std::size_t n) {
    need(n);
    if (n) std::memcpy(p, bytes_.data() + pos_, n);
    pos_ += n;
  }
  std::string bytes_, path_;
  std::size_t pos_ = 0;
};

inline constexpr const char* checkpoint_magic = "slim rec checkpoint 1";

/// What a checkpoint must agree on with the run resuming from it: the model's parameters (names, shapes)
/// and element size, and every training setting that changes the result.
template <class Model>
std::string checkpoint_fingerprint(Model& model, const train_config& c) {
  std::ostringstream os;
  os << Model::name << " items " << model.num_items() << " T " << sizeof(typename Model::value_type) << "\n";
  model.visit_parameters(
      [&](auto& p) { os << p.name << ' ' << p.rows << 'x' << p.cols << ' ' << p.trainable << '\n'; });
  os.precision(17);
  os << "epochs " << c.epochs << " batch " << c.batch_size << " lr " << c.adam.lr << " betas " << c.adam.beta1 << ' '
     << c.adam.beta2 << " eps " << c.adam.eps << " wd " << c.adam.weight_decay << " l2_emb " << c.l2_emb << " clip "
     << c.clip_norm << " seed " << c.seed << " eval_every " << c.eval_every << " patience " << c.patience << " select "
     << c.select_metric << ' ' << c.select_on_full << " negatives " << c.eval.negatives << " sampler_seed "
     << c.eval.sampler_seed << " full " << c.eval.full;
  // written only when not uniform, so checkpoints from before the setting existed still resume
  if (c.eval.distribution != metrics::negative_distribution::uniform) os << " negatives by popularity";
  return os.str();
}

}  // namespace detail

/// Trains `model` on `split` and tests it. With eval_every > 0, validation runs every eval_every epochs (and
/// after the last epoch); the parameters of the best validation by `select_metric` are restored before
/// the test, and with patience > 0 training stops after that many validations without improvement. With a
/// checkpoint (train_config::checkpoint) the run saves its state as it goes and resumes from it.
template <Recommender Model>
train_report fit(const typename Model::backend_type& be, Model& model, const sequence_split& split,
                 const train_config& cfg, const std::function<void(const progress_event&)>& progress = {}) {
  using T = typename Model::value_type;
  using clock = std::chrono::steady_clock;
  constexpr const char* where = "slim::rec::fit";
  require(cfg.epochs >= 0 && cfg.batch_size > 0 && cfg.eval_every >= 0 && cfg.patience >= 0, where,
          "epochs, eval_every, patience must be >= 0 and batch_size > 0");
  require(split.num_items == model.num_items(), where, "the split has ", split.num_items, " items, the model ",
          model.num_items());
  const metrics::metric select = metrics::metric::parse(cfg.select_metric);

  train::adam<typename Model::backend_type, T> opt(cfg.adam);
  if (cfg.l2_emb > 0) {
    backend::adam_config emb = cfg.adam;
    emb.weight_decay = cfg.l2_emb;
    opt.add_group([](const nn::parameter<T>& p) { return p.role == nn::parameter_role::embedding; }, emb);
  }
  opt.attach(model);

  train_report rep;
  const std::vector<index_t> users = trainable_users(split);
  nn::parameter_snapshot<T> best;
  double best_value = -std::numeric_limits<double>::infinity();
  index_t stale = 0;
  std::uint64_t step = 0;
  bool finished = false;  // stopped early (a resumed run goes straight to the test)
  const std::string fingerprint = cfg.checkpoint.empty() ? std::string() : detail::checkpoint_fingerprint(model, cfg);

  auto save = [&] {
    if (cfg.checkpoint.empty()) return;
    detail::checkpoint_writer w;
    w.text(detail::checkpoint_magic);
    w.text(fingerprint);
    w.u64(static_cast<std::uint64_t>(rep.epochs_run));
    w.u64(step);
    w.u64(static_cast<std::uint64_t>(rep.best_epoch));
    w.u64(static_cast<std::uint64_t>(stale));
    w.u64(finished ? 1 : 0);
    w.f64(best_value);
    w.f64(rep.train_seconds);
    w.f64(rep.eval_seconds);
    w.array(rep.epoch_loss.data(), rep.epoch_loss.size());
    w.array(rep.epoch_seconds.data(), rep.epoch_seconds.size());
    w.u64(rep.curve.size());
    for (const curve_point& c : rep.curve) {
      w.u64(static_cast<std::uint64_t>(c.epoch));
      w.f64(c.train_seconds);
      w.f64(c.eval_seconds);
      for (const auto* v : {&c.valid_sampled, &c.valid_full, &c.test_sampled, &c.test_full})
        w.array(v->data(), v->size());
    }
    model.visit_parameters([&](nn::parameter<T>& p) { w.array(p.value.data(), static_cast<std::size_t>(p.size())); });
    opt.visit_state([&](nn::parameter<T>&, tensor<T, 1>& m, tensor<T, 1>& v) {
      w.array(m.data(), static_cast<std::size_t>(m.size()));
      w.array(v.data(), static_cast<std::size_t>(v.size()));
    });
    w.u64(best.size());
    for (const auto& b : best) w.array(b.data(), static_cast<std::size_t>(b.size()));
    io::write_file_atomic(cfg.checkpoint, w.bytes());
  };

  index_t first_epoch = 1;
  if (!cfg.checkpoint.empty() && ::access(cfg.checkpoint.c_str(), F_OK) == 0) {
    detail::checkpoint_reader r(io::read_file(cfg.checkpoint), cfg.checkpoint);
    if (r.text() != detail::checkpoint_magic) throw error(cfg.checkpoint, "offset 0", "not a slim rec checkpoint");
    if (r.text() != fingerprint)
      throw error(cfg.checkpoint, "fingerprint",
                  "the checkpoint was written by another model or other training settings; remove it or change "
                  "the path");
    rep.epochs_run = static_cast<index_t>(r.u64());
    step = r.u64();
    rep.best_epoch = static_cast<index_t>(r.u64());
    stale = static_cast<index_t>(r.u64());
    finished = r.u64() != 0;
    best_value = r.f64();
    rep.train_seconds = r.f64();
    rep.eval_seconds = r.f64();
    rep.epoch_loss = r.vector<double>();
    rep.epoch_seconds = r.vector<double>();
    const std::uint64_t points = r.u64();
    if (rep.epochs_run < 0 || rep.epochs_run > cfg.epochs || points > static_cast<std::uint64_t>(rep.epochs_run))
      throw error(cfg.checkpoint, "header", "epoch counts out of range: a damaged checkpoint");
    rep.curve.resize(static_cast<std::size_t>(points));
    for (curve_point& c : rep.curve) {
      c.epoch = static_cast<index_t>(r.u64());
      c.train_seconds = r.f64();
      c.eval_seconds = r.f64();
      for (auto* v : {&c.valid_sampled, &c.valid_full, &c.test_sampled, &c.test_full}) *v = r.vector<double>();
    }
    model.visit_parameters(
        [&](nn::parameter<T>& p) { r.array(p.value.data(), static_cast<std::size_t>(p.size()), p.name); });
    opt.visit_state([&](nn::parameter<T>& p, tensor<T, 1>& m, tensor<T, 1>& v) {
      r.array(m.data(), static_cast<std::size_t>(m.size()), p.name + " (Adam m)");
      r.array(v.data(), static_cast<std::size_t>(v.size()), p.name + " (Adam v)");
    });
    opt.set_steps(static_cast<std::int64_t>(step));
    const std::uint64_t kept = r.u64();
    if (kept) {
      nn::save_values(model, best);  // the shapes; the values follow
      if (kept != best.size()) throw error(cfg.checkpoint, "best", "the best snapshot has the wrong number of tensors");
      for (auto& b : best) r.array(b.data(), static_cast<std::size_t>(b.size()), "best snapshot");
    }
    r.expect_end();
    first_epoch = rep.epochs_run + 1;
    if (!best.empty()) {  // the best validation's report, recomputed from its parameters
      nn::parameter_snapshot<T> current;
      nn::save_values(model, current);
      nn::load_values(model, best);
      rep.valid = evaluate(be, model, split, split_stage::valid, cfg.eval);
      nn::load_values(model, current);
    }
  }

  for (index_t epoch = first_epoch; epoch <= cfg.epochs && !finished; ++epoch) {
    const auto t0 = clock::now();
    const std::vector<index_t> order = epoch_order(users, cfg.seed, static_cast<std::uint64_t>(epoch));
    double loss_sum = 0;
    index_t batches = 0;
    for (std::size_t b0 = 0; b0 < order.size(); b0 += static_cast<std::size_t>(cfg.batch_size)) {
      const std::size_t bn = std::min(order.size() - b0, static_cast<std::size_t>(cfg.batch_size));
      nn::zero_grad(model);
      const nn::step_context ctx{true, cfg.seed, ++step};
      loss_sum += model.train_batch(be, ctx, split, std::span<const index_t>(order).subspan(b0, bn),
                                    static_cast<std::uint64_t>(epoch));
      if (cfg.clip_norm > 0) train::clip_gradient_norm(model, cfg.clip_norm);
      opt.step(be);
      ++batches;
    }
    const double seconds = std::chrono::duration<double>(clock::now() - t0).count();
    rep.train_seconds += seconds;
    rep.epochs_run = epoch;
    rep.epoch_loss.push_back(batches ? loss_sum / static_cast<double>(batches) : 0.0);
    rep.epoch_seconds.push_back(seconds);
    progress_event ev{epoch, cfg.epochs, rep.epoch_loss.back(), seconds};
    const bool validate = cfg.eval_every > 0 && (epoch % cfg.eval_every == 0 || epoch == cfg.epochs);
    if (!validate) {
      if (cfg.eval_every == 0) save();
      if (progress) progress(ev);
      continue;
    }
    evaluation_report v = evaluate(be, model, split, split_stage::valid, cfg.eval);
    rep.eval_seconds += v.seconds;
    const metrics::evaluation& e = cfg.select_on_full ? v.full : v.sampled;
    require(!e.names.empty(), where, "the selection metric's protocol (",
            cfg.select_on_full ? "full ranking" : "sampled", ") is not evaluated");
    const double value = e.mean(select.name());
    curve_point point{epoch, rep.train_seconds, 0.0, detail::means(v.sampled), detail::means(v.full), {}, {}};
    std::optional<evaluation_report> traced;
    if (cfg.trace_test) {
      traced = evaluate(be, model, split, split_stage::test, cfg.eval);
      rep.eval_seconds += traced->seconds;
      point.test_sampled = detail::means(traced->sampled);
      point.test_full = detail::means(traced->full);
      ev.test = &*traced;
    }
    point.eval_seconds = rep.eval_seconds;
    rep.curve.push_back(std::move(point));
    ev.valid = &v;
    ev.selected = value;
    if (value > best_value) {
      best_value = value;
      stale = 0;
      rep.best_epoch = epoch;
      nn::save_values(model, best);
      ev.improved = true;
      rep.valid = std::move(v);
      ev.valid = &*rep.valid;
    } else {
      ++stale;
    }
    if (cfg.patience > 0 && stale >= cfg.patience) finished = true;
    save();
    if (progress) progress(ev);
  }
  if (!best.empty())
    nn::load_values(model, best);
  else
    rep.best_epoch = rep.epochs_run;
  rep.test = evaluate(be, model, split, split_stage::test, cfg.eval);
  return rep;
}

/// A published setting: the model's sizes and the training settings together.
template <class ModelConfig>
struct preset {
  ModelConfig model;
  train_config train;
};

/// SASRec on MovieLens-1M as in the paper and its code: 2 blocks, 1 head, d = 50, n = 200, dropout 0.2,
/// Adam lr 1e-3 with β = (0.9, 0.98), batch 128, BCE with one sampled negative per position, 200 epochs
/// (the original runs 201 and reports the test result at its best validation).
inline preset<sasrec_config> sasrec_ml1m() {
  preset<sasrec_config> p;
  p.model = sasrec_config{};
  p.train.epochs = 200;
  p.train.batch_size = 128;
  p.train.adam = backend::adam_config{.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.98f, .eps = 1e-8f, .weight_decay = 0.0f};
  return p;
}

/// GRU4Rec with RecBole's defaults: embedding 64, hidden 128, one layer without biases, dropout 0.3,
/// softmax CE over every item, Adam lr 1e-3 (β = (0.9, 0.999)). RecBole batches 2,048 targets (prefixes);
/// 16 users hold about as many positions on ML-1M (≈ 1,700), so a step sees a similar number of targets.
inline preset<gru4rec_config> gru4rec_recbole() {
  preset<gru4rec_config> p;
  p.model = gru4rec_config{};
  p.train.epochs = 200;
  p.train.batch_size = 16;
  p.train.adam = backend::adam_config{.lr = 1e-3f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
  return p;
}

}  // namespace slim::rec
