// slim — the training loop of a sequential recommender: epochs over seeded shuffles of the users in
// batches, Adam, validation every few epochs with early stopping on a chosen metric, the best epoch's
// parameters restored before the test evaluation. Everything random is keyed by the seed (shuffles by
// epoch, negatives by epoch and user, dropout by step and layer), so a run is reproduced exactly by its
// seed at any thread count. Presets for the published settings are at the end.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "slim/backend/common.hpp"
#include "slim/core/philox.hpp"
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
};

/// What the progress callback receives: after every epoch, and after every validation.
struct progress_event {
  index_t epoch = 0;                                           ///< 1-based
  index_t epochs = 0;                                          ///< the configured maximum
  double loss = 0;                                             ///< mean training loss of the epoch
  double epoch_seconds = 0;                                    ///< training time of the epoch
  const evaluation_report* valid = nullptr;                    ///< set on validation epochs
  double selected = std::numeric_limits<double>::quiet_NaN();  ///< the selection metric's value then
  bool improved = false;
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

/// Trains `model` on `split` and tests it. With eval_every > 0, validation runs every eval_every epochs (and
/// after the last epoch); the parameters of the best validation by `select_metric` are restored before
/// the test, and with patience > 0 training stops after that many validations without improvement.
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
  for (index_t epoch = 1; epoch <= cfg.epochs; ++epoch) {
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
      if (progress) progress(ev);
      continue;
    }
    evaluation_report v = evaluate(be, model, split, split_stage::valid, cfg.eval);
    rep.eval_seconds += v.seconds;
    const metrics::evaluation& e = cfg.select_on_full ? v.full : v.sampled;
    require(!e.names.empty(), where, "the selection metric's protocol (",
            cfg.select_on_full ? "full ranking" : "sampled", ") is not evaluated");
    const double value = e.mean(select.name());
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
    if (progress) progress(ev);
    if (cfg.patience > 0 && stale >= cfg.patience) break;
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
