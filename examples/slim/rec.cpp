// `slim rec train`: trains a sequential recommender (SASRec or GRU4Rec) on a data set and prints one JSON
// object with its test metrics under the sampled protocol and full ranking. Progress goes to stderr.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <system_error>

#include "backends.hpp"
#include "commands.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/rec/load.hpp"
#include "slim/rec/trainer.hpp"
#include "parse.hpp"
#include "str.hpp"

namespace slim::cli {
namespace {

constexpr const char* rec_usage =
    "usage: slim rec train --data PATH [options]\n"
    "  --data PATH          the data set (a file or folder, as --format reads it)\n"
    "  --format F           sasrec | movielens | recbole | llmrank (default sasrec)\n"
    "  --model M            sasrec | gru4rec (default sasrec)\n"
    "  --item-text PATH     item text file (overrides the format's own search)\n"
    "  --epochs N           at most N epochs (default 200)\n"
    "  --seed S             initialisation, shuffles, negatives, dropout (default 42)\n"
    "  --threads T          thread pool size (default 1)\n"
    "  --eval-every E       validate every E epochs (default 20; 0: never)\n"
    "  --patience P         stop after P validations without gain (default 0: never)\n"
    "  --loss L             bce | ce (default: bce for sasrec, ce for gru4rec)\n"
    "  --max-len L          positions per user (default 200)\n"
    "  --dim D              embedding size (default 50 sasrec, 64 gru4rec)\n"
    "  --blocks B --heads H sasrec blocks (2) and heads (1)\n"
    "  --hidden H           gru4rec hidden size (128)\n"
    "  --dropout P          dropout (0.2 sasrec, 0.3 gru4rec)\n"
    "  --lr X --batch N     Adam learning rate (1e-3) and users per batch (128 sasrec, 16 gru4rec)\n"
    "  --l2-emb X           L2 on the embedding tables (0)\n"
    "  --negatives N        sampled protocol: negatives per user (100)\n"
    "  --negatives-from D   uniform | popularity (by training interactions; default uniform)\n"
    "  --eval-seed S        the sampled negatives' seed (2018)\n"
    "  --select METRIC      validation metric that picks the epoch (ndcg@10)\n"
    "  --select-full        pick the epoch by full ranking instead of the sampled protocol\n"
    "  --backend B          auto | scalar | sse2 | avx2 | avx512 (default auto: the best this CPU runs)\n"
    "  --checkpoint PATH    keep the run's state there after every validation; resume from it if present\n"
    "  --trace-test         also evaluate the test stage at every validation (learning curve in \"curve\")\n";

struct rec_options {
  std::string data, format = "sasrec", model = "sasrec", item_text, loss, backend = "auto", select = "ndcg@10",
                    checkpoint, negatives_from = "uniform";
  long long epochs = 200, seed = 42, threads = 1, eval_every = 20, patience = 0, max_len = 200, dim = 0, blocks = 2,
            heads = 1, hidden = 128, batch = 0, negatives = 100, eval_seed = 2018;
  double dropout = -1, lr = 1e-3, l2_emb = 0;
  bool select_full = false, trace_test = false;
};

rec_options parse_rec(args a) {
  rec_options o;
  for (option_reader r(a); r.next();) {
    const std::string_view name = r.name();
    if (name == "--select-full" || name == "--trace-test") {
      r.no_value();
      (name == "--select-full" ? o.select_full : o.trace_test) = true;
      continue;
    }
    const std::string_view value = r.value();
    constexpr long long big = 1000000000;
    if (name == "--data")
      o.data = value;
    else if (name == "--format")
      o.format = value;
    else if (name == "--model")
      o.model = value;
    else if (name == "--item-text")
      o.item_text = value;
    else if (name == "--loss")
      o.loss = value;
    else if (name == "--backend")
      o.backend = value;
    else if (name == "--select")
      o.select = value;
    else if (name == "--checkpoint")
      o.checkpoint = value;
    else if (name == "--epochs")
      o.epochs = parse_int(name, value, 0, big);
    else if (name == "--seed")
      o.seed = parse_int(name, value, 0, (1LL << 62));
    else if (name == "--threads")
      o.threads = parse_int(name, value, 1, 1024);
    else if (name == "--eval-every")
      o.eval_every = parse_int(name, value, 0, big);
    else if (name == "--patience")
      o.patience = parse_int(name, value, 0, big);
    else if (name == "--max-len")
      o.max_len = parse_int(name, value, 1, 100000);
    else if (name == "--dim")
      o.dim = parse_int(name, value, 1, 100000);
    else if (name == "--blocks")
      o.blocks = parse_int(name, value, 0, 1000);
    else if (name == "--heads")
      o.heads = parse_int(name, value, 1, 1000);
    else if (name == "--hidden")
      o.hidden = parse_int(name, value, 1, 100000);
    else if (name == "--batch")
      o.batch = parse_int(name, value, 1, big);
    else if (name == "--negatives")
      o.negatives = parse_int(name, value, 0, big);
    else if (name == "--negatives-from")
      o.negatives_from = value;
    else if (name == "--eval-seed")
      o.eval_seed = parse_int(name, value, 0, (1LL << 62));
    else if (name == "--dropout")
      o.dropout = parse_real(name, value, 0, 0.999);
    else if (name == "--lr")
      o.lr = parse_real(name, value, 0, 1e3);
    else if (name == "--l2-emb")
      o.l2_emb = parse_real(name, value, 0, 1e3);
    else
      throw usage_error(str("unknown option '", name, "'"));
  }
  if (o.data.empty()) throw usage_error("--data is required");
  if (o.negatives_from != "uniform" && o.negatives_from != "popularity")
    throw usage_error(str("--negatives-from wants uniform or popularity, not '", o.negatives_from, "'"));
  if (o.model != "sasrec" && o.model != "gru4rec")
    throw usage_error(str("--model wants sasrec or gru4rec, not '", o.model, "'"));
  if (!o.loss.empty() && o.loss != "bce" && o.loss != "ce")
    throw usage_error(str("--loss wants bce or ce, not '", o.loss, "'"));
  check_backend_name(o.backend);
  if (o.model == "sasrec" && o.dim > 0 && o.dim % o.heads != 0)
    throw usage_error(str("--dim ", std::to_string(o.dim), " is not a multiple of --heads ", std::to_string(o.heads)));
  try {
    rec::parse_format(o.format);
    metrics::metric::parse(o.select);
  } catch (const slim::error& e) {
    throw usage_error(e.what());
  }
  return o;
}

/// A float setting as the decimal the user wrote (0.2f prints as 0.2, not 0.20000000298).
double rounded(float x) { return std::round(static_cast<double>(x) * 1e6) / 1e6; }

nlohmann::json metrics_json(const metrics::evaluation& e) {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t m = 0; m < e.names.size(); ++m) j[e.names[m]] = e.mean(m);
  return j;
}

/// Trains the chosen model on backend `be` and returns the JSON report.
template <class B>
nlohmann::json train_on(const B& be, std::string_view backend_name, const rec_options& o,
                        const rec::sequence_split& split, const rec::dataset& data) {
  rec::train_config tc;
  rec::preset<rec::sasrec_config> sp = rec::sasrec_ml1m();
  rec::preset<rec::gru4rec_config> gp = rec::gru4rec_recbole();
  const bool sasrec = o.model == "sasrec";
  tc = sasrec ? sp.train : gp.train;
  tc.epochs = o.epochs;
  tc.seed = static_cast<std::uint64_t>(o.seed);
  tc.eval_every = o.eval_every;
  tc.patience = o.patience;
  if (o.batch > 0) tc.batch_size = o.batch;
  tc.adam.lr = static_cast<float>(o.lr);
  tc.l2_emb = static_cast<float>(o.l2_emb);
  tc.select_metric = o.select;
  tc.select_on_full = o.select_full;
  tc.eval.negatives = o.negatives;
  tc.eval.sampler_seed = static_cast<std::uint64_t>(o.eval_seed);
  tc.eval.distribution = o.negatives_from == "popularity" ? metrics::negative_distribution::popularity
                                                          : metrics::negative_distribution::uniform;
  tc.checkpoint = o.checkpoint;
  tc.trace_test = o.trace_test;
  if (o.select_full && !tc.eval.full) throw usage_error("--select-full needs full ranking");
  if (!o.select_full && o.negatives == 0 && o.eval_every > 0)
    throw usage_error("--negatives 0 leaves no sampled metric to select on: add --select-full");

  nlohmann::json config = {{"model", o.model},
                           {"format", o.format},
                           {"data", o.data},
                           {"seed", o.seed},
                           {"threads", o.threads},
                           {"backend", std::string(backend_name)},
                           {"max_epochs", o.epochs},
                           {"eval_every", o.eval_every},
                           {"patience", o.patience},
                           {"batch_size", tc.batch_size},
                           {"lr", o.lr},
                           {"l2_emb", o.l2_emb},
                           {"negatives", o.negatives},
                           {"negatives_from", o.negatives_from},
                           {"eval_seed", o.eval_seed},
                           {"select", o.select},
                           {"select_full", o.select_full},
                           {"max_len", o.max_len}};
  auto progress = [&](const rec::progress_event& e) {
    std::fprintf(stderr, "[slim rec] epoch %lld/%lld  loss %.4f  %.2f s", static_cast<long long>(e.epoch),
                 static_cast<long long>(e.epochs), e.loss, e.epoch_seconds);
    if (e.valid) {
      std::fprintf(stderr, "  | valid %s %.4f%s (%.1f s)", o.select.c_str(), e.selected, e.improved ? " *" : "",
                   e.valid->seconds);
      if (!e.valid->full.names.empty()) std::fprintf(stderr, "  full ndcg@10 %.4f", e.valid->full.mean("ndcg@10"));
      if (e.test && !e.test->sampled.names.empty())
        std::fprintf(stderr, "  | test %s %.4f", o.select.c_str(), e.test->sampled.mean(o.select));
    }
    std::fprintf(stderr, "\n");
  };
  rec::train_report r;
  const std::uint64_t init_seed = static_cast<std::uint64_t>(o.seed);
  if (sasrec) {
    rec::sasrec_config mc = sp.model;
    if (o.dim > 0) mc.dim = o.dim;
    mc.blocks = o.blocks;
    mc.heads = o.heads;
    mc.max_len = o.max_len;
    if (o.dropout >= 0) mc.dropout = static_cast<float>(o.dropout);
    if (!o.loss.empty()) mc.loss = o.loss == "bce" ? rec::rec_loss::bce : rec::rec_loss::ce;
    config.update({{"dim", mc.dim},
                   {"blocks", mc.blocks},
                   {"heads", mc.heads},
                   {"dropout", rounded(mc.dropout)},
                   {"loss", std::string(rec::loss_name(mc.loss))}});
    rec::sasrec<B> model(mc, split.num_items, init_seed);
    r = rec::fit(be, model, split, tc, progress);
  } else {
    rec::gru4rec_config mc = gp.model;
    if (o.dim > 0) mc.embedding_size = o.dim;
    mc.hidden_size = o.hidden;
    mc.max_len = o.max_len;
    if (o.dropout >= 0) mc.dropout = static_cast<float>(o.dropout);
    if (!o.loss.empty()) mc.loss = o.loss == "bce" ? rec::rec_loss::bce : rec::rec_loss::ce;
    config.update({{"dim", mc.embedding_size},
                   {"hidden", mc.hidden_size},
                   {"dropout", rounded(mc.dropout)},
                   {"loss", std::string(rec::loss_name(mc.loss))}});
    rec::gru4rec<B> model(mc, split.num_items, init_seed);
    r = rec::fit(be, model, split, tc, progress);
  }
  nlohmann::json out;
  const std::string sampled_key =
      "sampled" + std::to_string(o.negatives) + (o.negatives_from == "popularity" ? "_popularity" : "");
  if (!r.test.sampled.names.empty()) out[sampled_key] = metrics_json(r.test.sampled);
  out["full"] = metrics_json(r.test.full);
  out["epochs"] = r.epochs_run;
  out["best_epoch"] = r.best_epoch;
  out["train_seconds"] = r.train_seconds;
  out["seconds_per_epoch"] = r.epochs_run ? r.train_seconds / static_cast<double>(r.epochs_run) : 0.0;
  out["eval_seconds"] = r.eval_seconds + r.test.seconds;
  if (r.valid) {
    nlohmann::json v;
    if (!r.valid->sampled.names.empty()) v[sampled_key] = metrics_json(r.valid->sampled);
    if (!r.valid->full.names.empty()) v["full"] = metrics_json(r.valid->full);
    out["valid"] = v;
  }
  nlohmann::json curve = nlohmann::json::array();
  auto named = [&](const std::vector<double>& v) {
    nlohmann::json m = nlohmann::json::object();
    for (std::size_t i = 0; i < v.size() && i < tc.eval.metrics.size(); ++i) m[tc.eval.metrics[i].name()] = v[i];
    return m;
  };
  auto section = [&](const std::vector<double>& sampled, const std::vector<double>& full) {
    nlohmann::json j = nlohmann::json::object();
    if (!sampled.empty()) j[sampled_key] = named(sampled);
    if (!full.empty()) j["full"] = named(full);
    return j;
  };
  for (const rec::curve_point& c : r.curve) {
    nlohmann::json point = {{"epoch", c.epoch},
                            {"train_seconds", c.train_seconds},
                            {"eval_seconds", c.eval_seconds},
                            {"valid", section(c.valid_sampled, c.valid_full)}};
    if (!c.test_sampled.empty() || !c.test_full.empty()) point["test"] = section(c.test_sampled, c.test_full);
    curve.push_back(point);
  }
  out["curve"] = curve;
  out["test_users"] = r.test.users.size();
  out["users"] = split.num_users();
  out["items"] = split.num_items;
  out["interactions"] = data.num_interactions();
  out["final_loss"] = r.epoch_loss.empty() ? 0.0 : r.epoch_loss.back();
  out["config"] = config;
  return out;
}

int rec_train(args a) {
  const rec_options o = parse_rec(a);
  rec::load_options lo;
  if (!o.item_text.empty()) lo.item_text_path = o.item_text;
  std::fprintf(stderr, "[slim rec] loading %s (%s)\n", o.data.c_str(), o.format.c_str());
  const rec::loaded_data loaded = rec::load_dataset(o.data, rec::parse_format(o.format), lo);
  const rec::sequence_split split = loaded.make_split();
  std::fprintf(stderr, "[slim rec] %lld users, %lld items, %lld interactions; training %s\n",
               static_cast<long long>(split.num_users()), static_cast<long long>(split.num_items),
               static_cast<long long>(loaded.data.num_interactions()), o.model.c_str());
  thread_pool pool(static_cast<std::size_t>(o.threads));
  const nlohmann::json out = with_backend(o.backend, pool, [&](const auto& be, std::string_view backend_name) {
    return train_on(be, backend_name, o, split, loaded.data);
  });
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int run_rec(args a) {
  if (const auto status = usage_if_asked(a, rec_usage, "rec", {"train"})) return *status;
  return rec_train(a.subspan(1));
}

}  // namespace slim::cli
