// slim — the SLIM pipeline as one type: prompts → teach → distil → explain → embed → recommend → evaluate.
// `slim_pipeline<Teacher, Student, Backbones...>` runs every stage on a dataset and its leave-one-out split,
// writes each stage's artefact to a run directory keyed by a hash of the stage's configuration (and of the
// stages before it), and on a rerun resumes from every artefact whose key still matches (docs/pipeline.md).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/tensor.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/distill/leakage.hpp"
#include "slim/distill/model_teacher.hpp"
#include "slim/distill/recorded_teacher.hpp"
#include "slim/distill/student.hpp"
#include "slim/distill/teacher.hpp"
#include "slim/io/atomic_file.hpp"
#include "slim/io/json.hpp"
#include "slim/io/safetensors.hpp"
#include "slim/metrics/bias.hpp"
#include "slim/metrics/statistics.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/lora.hpp"
#include "slim/nn/sentence_encoder.hpp"
#include "slim/prompt/catalogue.hpp"
#include "slim/prompt/rationale.hpp"
#include "slim/prompt/slim_cot.hpp"
#include "slim/rec/dataset.hpp"
#include "slim/rec/fusion.hpp"
#include "slim/rec/gru4rec.hpp"
#include "slim/rec/sasrec.hpp"
#include "slim/rec/split.hpp"
#include "slim/rec/trainer.hpp"
#include "slim/train/lm_loss.hpp"
#include "slim/train/lm_trainer.hpp"

namespace slim::pipeline {

// ---------------------------------------------------------------- backbone policies

/// SASRec as a pipeline backbone: `model<Fusion>` is the recommender with that fusion policy.
template <class Backend>
struct sasrec_backbone {
  static constexpr std::string_view name = "SASRec";
  using backend_type = Backend;
  using config_type = rec::sasrec_config;
  template <class Fusion>
  using model = rec::sasrec<Backend, Fusion>;
};

/// GRU4Rec as a pipeline backbone.
template <class Backend>
struct gru4rec_backbone {
  static constexpr std::string_view name = "GRU4Rec";
  using backend_type = Backend;
  using config_type = rec::gru4rec_config;
  template <class Fusion>
  using model = rec::gru4rec<Backend, Fusion>;
};

// ---------------------------------------------------------------- configuration

/// Every runtime setting of a pipeline run (designated initialisers welcome).
struct pipeline_config {
  std::string run_dir = "slim_run";  ///< artefacts, manifest, results.csv
  std::uint64_t seed = 1;            ///< teacher sample, student initialisation, shuffles of the controls
  index_t teach_users = 500;         ///< users the teacher labels (SLIM: ~1,000 of ML-1M's 6,040)
  /// Adds the "+teacher" arm (the paper's SLIM⁻): the teacher's own rationales, embedded, for the users it
  /// labelled (a zero vector for the rest), beside the student's.
  bool teacher_arm = false;
  /// Adds the ID-agnostic "text-matching" arm (rec::text_matching): items are their text embeddings alone (no
  /// ID embedding), users their history plus the student's rationale, as in SLIM fusion.
  bool text_matching_arm = true;
  /// Domain pretraining reads the item texts, and also the distillation users' teacher rationales when true
  /// (as unconditioned text: the model learns their language but not how to write one for a given history).
  bool pretrain_on_rationales = true;
  double held_out_share = 0.1;  ///< share of the labelled users kept out of distillation (held-out NLL)
  prompt::slim_cot_config prompt = default_prompt();  ///< the student and teacher prompts (plain format)
  std::size_t vocab_size = 1024;                      ///< the student tokenizer (trained on the item texts)
  nn::decoder_config student{.vocab_size = 0,
                             .hidden_size = 64,
                             .intermediate_size = 172,
                             .num_layers = 2,
                             .num_heads = 4,
                             .num_kv_heads = 2,
                             .max_positions = 512,
                             .rms_norm_eps = 1e-5,
                             .tie_word_embeddings = true};
  nn::lora_config lora{.rank = 16, .alpha = 32};
  train::lm_train_config pretrain = lm_settings(6, 16, 160);  ///< domain pretraining (full, from scratch)
  train::lm_train_config distil = lm_settings(20, 8, 320);    ///< LoRA distillation
  distill::explain_options explain{.batch = 64, .max_new_tokens = 96};
  index_t embed_max_len = 160;                      ///< tokens of a text the embedder reads
  std::vector<std::uint64_t> seeds{1, 2, 3, 4, 5};  ///< recommender seeds (every arm runs each)
  rec::sasrec_config sasrec{
      .dim = 32, .blocks = 2, .heads = 1, .max_len = 32, .dropout = 0.2f, .attention_dropout = 0.2f};
  rec::gru4rec_config gru4rec{.embedding_size = 32, .hidden_size = 64, .max_len = 32, .dropout = 0.2f};
  rec::train_config sasrec_train = default_rec_train(128);
  rec::train_config gru4rec_train = default_rec_train(32);
  double price_prompt_per_1k = 0.0015;     ///< teacher dollars per 1K prompt tokens (gpt-3.5-turbo)
  double price_completion_per_1k = 0.002;  ///< teacher dollars per 1K completion tokens

  /// AdamW at 3e-3, 5% warmup, cosine to 10%.
  static train::lm_train_config lm_settings(index_t epochs, index_t batch, index_t max_len) {
    train::lm_train_config c;
    c.epochs = epochs;
    c.batch_size = batch;
    c.max_len = max_len;
    c.lr = 3e-3;
    c.warmup_ratio = 0.05;
    c.min_lr_ratio = 0.1;
    return c;
  }

  /// Plain prompts with BOS (the student tokenizer has no chat markup), the 12 most recent items, 384 tokens.
  static prompt::slim_cot_config default_prompt() {
    prompt::slim_cot_config p;
    p.format = prompt::chat_format::plain;
    p.plain_bos = true;
    p.max_history = 12;
    p.n_items = 5;
    p.token_budget = 384;
    return p;
  }

  static rec::train_config default_rec_train(index_t batch) {
    rec::train_config t;
    t.epochs = 40;
    t.batch_size = batch;
    t.eval_every = 5;
    t.patience = 2;
    t.eval.top_k = 10;
    return t;
  }
};

/// What the pipeline trains the student tokenizer on: every item's title and text, and 20 copies of the
/// student prompt's fixed wording (part of every training sequence).
inline std::vector<std::string> student_tokenizer_corpus(const rec::dataset& data, const prompt::slim_cot_config& p) {
  std::vector<std::string> corpus;
  for (index_t i = 1; i <= data.num_items; ++i) {
    corpus.push_back(data.items[static_cast<std::size_t>(i)].title);
    corpus.push_back(data.items[static_cast<std::size_t>(i)].text);
  }
  for (int r = 0; r < 20; ++r)
    corpus.push_back("A user's " + p.domain + ", oldest first: Reason step by step: the user's preferences, the " +
                     p.category_kind + " to recommend, and " + std::to_string(p.n_items) + " " + p.domain +
                     " to recommend. Step 1: Step 2: Step 3:");
  return corpus;
}

// ---------------------------------------------------------------- results

/// One recommender training: a backbone, an arm (fusion and rationale source) and a seed.
struct arm_run {
  std::string backbone, arm;
  std::uint64_t seed = 0;
  std::map<std::string, double> sampled, full;  ///< test metrics (ndcg@10, hr@10, hr@20, mrr@10)
  double efd = 0, epc = 0;                      ///< EFD@10 / EPC@10 of the full-ranking top-10 lists
  std::vector<double> groups;                   ///< sampled NDCG@10 in the five sparsity groups (sparsest first)
  index_t epochs = 0;
  double seconds = 0;
};

/// What a run produced besides the recommender runs: the student, the cost, leakage counts, stage times.
struct pipeline_summary {
  index_t users = 0, items = 0, interactions = 0;
  index_t teach_users = 0, distil_users = 0, held_out_users = 0;
  double held_out_nll = 0;              ///< distilled student, mean token NLL on the held-out teacher rationales
  double held_out_nll_undistilled = 0;  ///< the same with LoRA B = 0
  double parse_rate = 0;                ///< share of student rationales that parse into all three steps
  double parse_rate_undistilled = 0;
  std::int64_t teacher_prompt_tokens = 0, teacher_completion_tokens = 0;
  double teacher_dollars = 0, teacher_seconds = 0;
  double student_seconds_per_rationale = 0;  ///< batched generation, wall time / rationales
  index_t batch_mismatches = 0;          ///< of those, rationales that differ from the batched ones (greedy: expect 0)
  double student_seconds_single = 0;     ///< one prompt at a time (the first 32 users), wall time / rationale
  index_t teacher_mentions_removed = 0;  ///< held-out items named by the teacher, removed before distillation
  index_t student_mentions_removed = 0;  ///< held-out items named by the student, removed before embedding
  index_t teacher_users_with_mentions = 0;    ///< teacher rationales that named a held-out item (before the scrub)
  index_t student_users_with_mentions = 0;    ///< student rationales that named a held-out item (before the scrub)
  std::vector<index_t> group_min, group_max;  ///< training-history lengths of the sparsity groups
  std::map<std::string, double> stage_seconds;
  std::map<std::string, bool> stage_resumed;
};

/// Everything a run produced that a user (or a leakage test) may inspect.
struct pipeline_artefacts {
  std::vector<std::vector<std::int32_t>> student_prompts;  ///< (users) ids
  std::vector<std::string> student_prompt_text;            ///< (users)
  std::vector<index_t> teach_users;                        ///< labelled users, sample order
  std::vector<std::string> teacher_prompts;                ///< (teach_users) the user message sent
  std::vector<std::string> teacher_rationales;             ///< (teach_users) after the leakage scrub
  std::vector<std::string> rationales;                     ///< (users) distilled student, after the scrub
  std::vector<std::string> rationales_undistilled;         ///< (users) LoRA B = 0, after the scrub
  tensor<float, 2> item_embeddings;                        ///< (items + 1, H) row 0 zero
  tensor<float, 2> user_embeddings;                        ///< (users, H) of `rationales`
  tensor<float, 2> user_embeddings_undistilled;            ///< (users, H)
  tensor<float, 2>
      user_embeddings_teacher;  ///< (users, H) of `teacher_rationales` (zero rows: unlabelled); teacher_arm
};

/// The full outcome.
struct pipeline_result {
  pipeline_summary summary;
  std::vector<arm_run> runs;
};

/// Progress: (stage, done, total); total 0 announces a stage.
using progress_fn = std::function<void(std::string_view stage, index_t done, index_t total)>;

namespace detail {

template <class T>
struct student_traits {
  static constexpr bool is_decoder_lm = false;
};
template <class B, class A, class T>
struct student_traits<nn::decoder_lm<B, A, T>> {
  static constexpr bool is_decoder_lm = true;
  using backend_type = B;
  using adapter_type = A;
  using value_type = T;
  using base_type = nn::decoder_lm<B, nn::no_adapter, T>;
};

template <class B>
concept pipeline_backbone = requires {
  { B::name } -> std::convertible_to<std::string_view>;
  typename B::config_type;
  typename B::backend_type;
  typename B::template model<rec::id_only>;
};

/// 64-bit key of a stage: the hash of its settings and of the keys it builds on.
inline std::string stage_key(const io::json& j) {
  train::detail::lm_hasher h;
  const std::string t = j.dump();
  h.bytes(t.data(), t.size());
  return h.hex();
}

/// Column-standardised copy (z-score over rows [first, rows)), scaled by 1/√cols so a row has norm ≈ 1; rows
/// before `first` (padding) stay zero. Mean-pooled LM states share a large common direction; this removes it.
inline tensor<float, 2> standardize(const tensor<float, 2>& x, index_t first) {
  const index_t n = x.extent(0), d = x.extent(1);
  tensor<float, 2> y({n, d});
  std::fill(y.data(), y.data() + y.size(), 0.0f);
  if (n - first < 2) return y;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (index_t j = 0; j < d; ++j) {
    double m = 0, v = 0;
    for (index_t i = first; i < n; ++i) m += x(i, j);
    m /= static_cast<double>(n - first);
    for (index_t i = first; i < n; ++i) v += (x(i, j) - m) * (x(i, j) - m);
    const double sd = std::sqrt(v / static_cast<double>(n - first - 1));
    for (index_t i = first; i < n; ++i) y(i, j) = static_cast<float>(sd > 0 ? (x(i, j) - m) / sd * scale : 0.0);
  }
  return y;
}

inline void write_matrix(std::vector<io::tensor_entry>& out, const std::string& name, const tensor<float, 2>& m) {
  out.push_back(io::f32_entry(name, {m.extent(0), m.extent(1)},
                              std::span<const float>(m.data(), static_cast<std::size_t>(m.size()))));
}

inline tensor<float, 2> read_matrix(const io::safetensors_file& f, const std::string& name) {
  const auto& info = f.info(name);
  require(info.shape.size() == 2, f.path().c_str(), "tensor ", name, " is not a matrix");
  tensor<float, 2> m({info.shape[0], info.shape[1]});
  f.read(name, m.view());
  return m;
}

/// A JSON Lines file of strings, one record {"i": index, "text": ...} per line, written atomically.
inline void write_texts(const std::string& path, std::span<const std::string> texts) {
  std::string out;
  for (std::size_t i = 0; i < texts.size(); ++i) out += io::json{{"i", i}, {"text", texts[i]}}.dump() + "\n";
  io::write_file_atomic(path, out);
}

inline std::vector<std::string> read_texts(const std::string& path, std::size_t expected) {
  std::vector<std::string> texts;
  io::read_jsonl(path, [&](const io::json& r, std::size_t line) {
    require(r.contains("text") && r["text"].is_string(), path.c_str(), "line ", line, ": no \"text\" string");
    texts.push_back(r["text"].get<std::string>());
  });
  require(texts.size() == expected, path.c_str(), "holds ", texts.size(), " texts, expected ", expected);
  return texts;
}

}  // namespace detail

/// The pipeline type. Teacher models distill::Teacher; Student is nn::decoder_lm<Backend, nn::lora<...>> (the
/// undistilled control is the same student with LoRA B = 0, so an adapter is required); every Backbone is a
/// pipeline backbone (sasrec_backbone<B>, gru4rec_backbone<B>) on a host backend. A wrong assembly fails to
/// compile with one of the messages below.
template <class Teacher, class Student, class... Backbones>
class slim_pipeline {
  using traits = detail::student_traits<Student>;
  static_assert(distill::Teacher<Teacher>,
                "slim_pipeline: the Teacher must model slim::distill::Teacher (a static `name` and "
                "std::vector<teacher_answer> teach(std::span<const teacher_request>))");
  static_assert(traits::is_decoder_lm, "slim_pipeline: the Student must be slim::nn::decoder_lm<Backend, Adapter>");

 public:
  using backend_type = typename traits::backend_type;
  using adapter_type = typename traits::adapter_type;
  using student_type = Student;
  using base_type = typename traits::base_type;

  static_assert(!std::is_same_v<adapter_type, nn::no_adapter>,
                "slim_pipeline: the Student needs a LoRA adapter (nn::lora<...>): distillation trains LoRA factors "
                "and the undistilled control sets their B to zero");
  static_assert(sizeof...(Backbones) > 0, "slim_pipeline: name at least one backbone (sasrec_backbone<B>, ...)");
  static_assert((detail::pipeline_backbone<Backbones> && ...),
                "slim_pipeline: every Backbone must be a pipeline backbone such as "
                "slim::pipeline::sasrec_backbone<Backend> or gru4rec_backbone<Backend>");
  static_assert((std::is_same_v<typename Backbones::backend_type::memory_space, host_space> && ...),
                "slim_pipeline: backbones run on a host backend (the pipeline moves embeddings through host memory)");

  /// The arms every backbone runs, in table order ("text-matching" and "+teacher" are added after them when
  /// pipeline_config::text_matching_arm and teacher_arm are set: see arm_names).
  static constexpr std::array<std::string_view, 5> arms = {"backbone", "+text", "+SLIM", "shuffled", "undistilled"};

  /// The arms this configuration runs, in table order.
  std::vector<std::string> arm_names() const {
    std::vector<std::string> a(arms.begin(), arms.end());
    if (cfg_.text_matching_arm) a.emplace_back("text-matching");
    if (cfg_.teacher_arm) a.emplace_back("+teacher");
    return a;
  }

  explicit slim_pipeline(pipeline_config cfg) : cfg_(std::move(cfg)) {}

  /// A BERT-family sentence encoder (all-MiniLM-L6-v2) on the student's backend.
  using text_encoder_type = nn::sentence_encoder<backend_type, float>;
  /// Embeds every text (item texts and rationales) with `encoder` instead of the pretrained student's
  /// mean-pooled states; `fingerprint` names it in the embed stage's key (e.g. its folder and a hash of its
  /// weights). nullptr: back to the student. The encoder must outlive run().
  void set_text_encoder(text_encoder_type* encoder, std::string fingerprint) {
    encoder_ = encoder;
    encoder_fingerprint_ = encoder ? std::move(fingerprint) : std::string();
  }
  const pipeline_config& config() const noexcept { return cfg_; }
  const pipeline_artefacts& artefacts() const noexcept { return art_; }

  /// Runs (or resumes) every stage on `data` and its leave-one-out `split`, with `be` for the student and
  /// `rec_be` for the recommenders.
  pipeline_result run(Teacher& teacher, const rec::dataset& data, const rec::sequence_split& split,
                      const backend_type& be, const progress_fn& progress = {}) {
    namespace fs = std::filesystem;
    constexpr const char* where = "slim::slim_pipeline::run";
    require(split.num_users() == data.num_users() && split.num_items == data.num_items, where,
            "the split does not belong to the dataset");
    require(data.num_users() >= 10, where, "a dataset of ", data.num_users(), " users is too small to run");
    // checked before any work: a prompt at the budget plus a full rationale must fit the student's positions
    require(static_cast<index_t>(cfg_.prompt.token_budget) + cfg_.explain.max_new_tokens - 1 <=
                    cfg_.student.max_positions &&
                cfg_.distil.max_len <= cfg_.student.max_positions &&
                cfg_.pretrain.max_len <= cfg_.student.max_positions,
            where, "prompt.token_budget (", cfg_.prompt.token_budget, ") + explain.max_new_tokens (",
            cfg_.explain.max_new_tokens, ") - 1, distil.max_len (", cfg_.distil.max_len, ") and pretrain.max_len (",
            cfg_.pretrain.max_len, ") must each fit student.max_positions (", cfg_.student.max_positions, ")");
    std::error_code ec;
    fs::create_directories(cfg_.run_dir, ec);
    if (ec) throw error(cfg_.run_dir, "", "cannot create the run directory: " + ec.message());
    progress_ = progress;
    result_ = {};
    data_ = &data;
    split_ = &split;
    pipeline_summary& sm = result_.summary;
    sm.users = data.num_users();
    sm.items = data.num_items;
    sm.interactions = data.num_interactions();

    manifest_ = io::json::object();
    manifest_["format"] = "slim run 1";
    manifest_["dataset"] = {{"name", data.name},
                            {"users", sm.users},
                            {"items", sm.items},
                            {"interactions", sm.interactions},
                            {"checksum", data_checksum()}};
    manifest_["teacher"] = std::string(Teacher::name);
    manifest_["seeds"] = cfg_.seeds;
    manifest_["seed"] = cfg_.seed;

    timed("tokenizer", [&] { return stage_tokenizer(teacher); });
    timed("prompts", [&] {
      stage_prompts();
      return false;
    });
    timed("teach", [&] { return stage_teach(teacher); });
    timed("distil", [&] { return stage_distil(be, teacher); });
    timed("explain", [&] { return stage_explain(be); });
    timed("embed", [&] { return stage_embed(be); });
    timed("recommend", [&] { return stage_recommend(); });

    manifest_["summary"] = summary_json(sm);
    io::write_json(path("manifest.json"), manifest_);
    write_csv();
    return result_;
  }

 private:
  // ------------------------------------------------------------ plumbing
  std::string path(const std::string& name) const { return (std::filesystem::path(cfg_.run_dir) / name).string(); }

  template <class F>
  void timed(const std::string& stage, F&& f) {
    if (progress_) progress_(stage, 0, 0);
    const auto t0 = std::chrono::steady_clock::now();
    const bool resumed = f();
    result_.summary.stage_seconds[stage] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    result_.summary.stage_resumed[stage] = resumed;
  }

  void tick(std::string_view stage, index_t done, index_t total) const {
    if (progress_) progress_(stage, done, total);
  }

  std::string data_checksum() const {
    train::detail::lm_hasher h;
    for (const auto& s : data_->sequences) h.bytes(s.data(), s.size() * sizeof(rec::item_id));
    for (const auto& t : data_->items) {
      h.bytes(t.title.data(), t.title.size());
      h.bytes(t.text.data(), t.text.size());
    }
    return h.hex();
  }

  /// True (and the stage's key recorded) when `file` exists beside a key file holding `key`.
  bool have(const std::string& stage, const std::string& key, std::initializer_list<std::string> files) {
    manifest_["stages"][stage] = key;
    const std::string kf = path(stage + ".key");
    if (!std::filesystem::exists(kf)) return false;
    for (const auto& f : files)
      if (!std::filesystem::exists(path(f))) return false;
    return io::read_file(kf) == key;
  }
  void done(const std::string& stage, const std::string& key) { io::write_file_atomic(path(stage + ".key"), key); }

  std::string item_title(rec::item_id i) const { return data_->items[static_cast<std::size_t>(i)].title; }
  std::vector<rec::item_id> held_out(index_t u) const {
    std::vector<rec::item_id> h;
    for (const rec::item_id i : {split_->valid[static_cast<std::size_t>(u)], split_->test[static_cast<std::size_t>(u)]})
      if (i != 0) h.push_back(i);
    return h;
  }
  index_t scrub(std::string& text, index_t u) const {
    const auto h = held_out(u);
    return static_cast<index_t>(distill::scrub_held_out(text, h, catalogue_).mentions);
  }

  // ------------------------------------------------------------ stages
  bool stage_tokenizer(Teacher& teacher) {
    io::json kj = {{"vocab", cfg_.vocab_size},
                   {"data", manifest_["dataset"]["checksum"]},
                   {"prompt", {cfg_.prompt.domain, cfg_.prompt.category_kind, cfg_.prompt.n_items}}};
    if constexpr (distill::LogitTeacher<Teacher>) kj["teacher_tokenizer"] = detail::stage_key(teacher.tokenizer_json());
    const std::string key = detail::stage_key(kj);
    keys_["tokenizer"] = key;
    catalogue_ = prompt::title_catalogue::from_lookup([&](rec::item_id i) { return item_title(i); }, 1,
                                                      static_cast<rec::item_id>(data_->num_items));
    if constexpr (distill::LogitTeacher<Teacher>) {  // KD needs one vocabulary: the student shares the teacher's
      const bool same = have("tokenizer", key, {"tokenizer.json"}) &&
                        io::read_file(path("tokenizer.json")) == teacher.tokenizer_json();
      if (!same) io::write_file_atomic(path("tokenizer.json"), teacher.tokenizer_json());
      tok_ = std::make_unique<text::byte_bpe>(text::byte_bpe::from_file(path("tokenizer.json")));
      done("tokenizer", key);
      return same;
    }
    if (have("tokenizer", key, {"tokenizer.json"})) {
      tok_ = std::make_unique<text::byte_bpe>(text::byte_bpe::from_file(path("tokenizer.json")));
      return true;
    }
    const text::trained_bpe t =
        distill::train_student_bpe(student_tokenizer_corpus(*data_, cfg_.prompt), cfg_.vocab_size);
    io::write_file_atomic(path("tokenizer.json"), t.to_json());
    tok_ = std::make_unique<text::byte_bpe>(text::byte_bpe::from_file(path("tokenizer.json")));
    done("tokenizer", key);
    return false;
  }

  void stage_prompts() {
    prompt::slim_cot cot(cfg_.prompt);
    const index_t n = data_->num_users();
    art_.student_prompts.assign(static_cast<std::size_t>(n), {});
    art_.student_prompt_text.assign(static_cast<std::size_t>(n), {});
    auto titles = [&](rec::item_id i) { return item_title(i); };
    for (index_t u = 0; u < n; ++u) {
      const auto& tr = split_->train[static_cast<std::size_t>(u)];
      if (tr.empty()) continue;
      prompt::built_prompt b = cot.student_prompt(*tok_, prompt::training_prefix(tr), titles);
      art_.student_prompts[static_cast<std::size_t>(u)] = std::move(b.ids);
      art_.student_prompt_text[static_cast<std::size_t>(u)] = std::move(b.text);
    }
  }

  bool stage_teach(Teacher& teacher) {
    const index_t n = data_->num_users();
    std::vector<index_t> eligible;
    for (index_t u = 0; u < n; ++u) {
      if (split_->train[static_cast<std::size_t>(u)].empty() || split_->test[static_cast<std::size_t>(u)] == 0)
        continue;
      if constexpr (distill::PartialTeacher<Teacher>)  // a recorded teacher labels only the users on record
        if (!teacher.has(u)) continue;
      eligible.push_back(u);
    }
    require(!eligible.empty(), where_teach, "the teacher can label none of the users with a test item");
    // a seeded sample of the users (Fisher-Yates on a Philox stream)
    philox_stream rng(cfg_.seed ^ 0x7eac4e2ull);
    for (std::size_t i = eligible.size(); i > 1; --i)
      std::swap(eligible[i - 1], eligible[rng.below(static_cast<std::uint32_t>(i))]);
    eligible.resize(std::min<std::size_t>(eligible.size(), static_cast<std::size_t>(cfg_.teach_users)));
    art_.teach_users = eligible;
    prompt::slim_cot cot(cfg_.prompt);
    auto titles = [&](rec::item_id i) { return item_title(i); };
    std::vector<distill::teacher_request> req;
    art_.teacher_prompts.clear();
    for (const index_t u : eligible) {
      if constexpr (distill::LogitTeacher<Teacher>) {
        // an in-process teacher shares the student's tokenizer and is asked with the student's prompt, the input
        // its logits are read on during KD
        req.push_back({u, "", art_.student_prompt_text[static_cast<std::size_t>(u)],
                       art_.student_prompts[static_cast<std::size_t>(u)]});
        art_.teacher_prompts.push_back(art_.student_prompt_text[static_cast<std::size_t>(u)]);
        continue;
      }
      prompt::built_prompt b =
          cot.teacher_prompt(*tok_, prompt::training_prefix(split_->train[static_cast<std::size_t>(u)]), titles);
      req.push_back({u, b.system, b.user, {}});
      art_.teacher_prompts.push_back(b.user);
    }
    train::detail::lm_hasher asked;  // what the teacher is asked, word for word
    for (const auto& q : req) {
      asked.bytes(q.system.data(), q.system.size());
      asked.bytes(q.prompt.data(), q.prompt.size());
      asked.bytes(q.ids.data(), q.ids.size() * sizeof(std::int32_t));
    }
    io::json kj = {{"teacher", std::string(Teacher::name)},
                   {"users", eligible},
                   {"prompt", keys_["tokenizer"]},
                   {"requests", asked.hex()},
                   {"data", manifest_["dataset"]["checksum"]}};
    if constexpr (distill::FingerprintedTeacher<Teacher>) kj["fingerprint"] = std::string(teacher.fingerprint());
    const std::string key = detail::stage_key(kj);
    keys_["teach"] = key;
    pipeline_summary& sm = result_.summary;
    sm.teach_users = static_cast<index_t>(eligible.size());
    std::vector<distill::teacher_answer> answers;
    const bool resumed = have("teach", key, {"teacher.jsonl"});
    if (resumed) {
      io::read_jsonl(path("teacher.jsonl"), [&](const io::json& r, std::size_t line) {
        require(r.contains("text") && r["text"].is_string(), path("teacher.jsonl").c_str(), "line ", line, ": no text");
        require(answers.size() < eligible.size() && r.value("user", index_t{-1}) == eligible[answers.size()],
                path("teacher.jsonl").c_str(), "line ", line, ": not the answer for user ",
                answers.size() < eligible.size() ? eligible[answers.size()] : index_t{-1}, " of the sample");
        distill::teacher_answer a;
        a.text = r["text"].get<std::string>();
        a.prompt_tokens = r.value("prompt_tokens", std::int64_t{0});
        a.completion_tokens = r.value("completion_tokens", std::int64_t{0});
        a.seconds = r.value("seconds", 0.0);
        answers.push_back(std::move(a));
      });
      require(answers.size() == eligible.size(), path("teacher.jsonl").c_str(), "holds ", answers.size(),
              " answers, expected ", eligible.size());
    } else {
      tick("teach", 0, static_cast<index_t>(req.size()));
      answers = teacher.teach(std::span<const distill::teacher_request>(req));
      require(answers.size() == req.size(), where_teach, "the teacher gave ", answers.size(), " answers to ",
              req.size(), " requests");
      tick("teach", static_cast<index_t>(req.size()), static_cast<index_t>(req.size()));
      std::string out;
      for (std::size_t i = 0; i < answers.size(); ++i) {
        auto& a = answers[i];
        if (a.prompt_tokens == 0)
          a.prompt_tokens = static_cast<std::int64_t>(tok_->encode(req[i].system + req[i].prompt).size());
        if (a.completion_tokens == 0) a.completion_tokens = static_cast<std::int64_t>(tok_->encode(a.text).size());
        out += io::json{{"user", eligible[i]},
                        {"text", a.text},
                        {"prompt_tokens", a.prompt_tokens},
                        {"completion_tokens", a.completion_tokens},
                        {"seconds", a.seconds}}
                   .dump() +
               "\n";
      }
      io::write_file_atomic(path("teacher.jsonl"), out);
      done("teach", key);
    }
    art_.teacher_rationales.clear();
    for (std::size_t i = 0; i < answers.size(); ++i) {
      sm.teacher_prompt_tokens += answers[i].prompt_tokens;
      sm.teacher_completion_tokens += answers[i].completion_tokens;
      sm.teacher_seconds += answers[i].seconds;
      std::string t = answers[i].text;
      const index_t m = scrub(t, eligible[i]);
      sm.teacher_mentions_removed += m;
      sm.teacher_users_with_mentions += m > 0;
      art_.teacher_rationales.push_back(std::move(t));
    }
    sm.teacher_dollars = static_cast<double>(sm.teacher_prompt_tokens) / 1000.0 * cfg_.price_prompt_per_1k +
                         static_cast<double>(sm.teacher_completion_tokens) / 1000.0 * cfg_.price_completion_per_1k;
    return resumed;
  }

  static constexpr const char* where_teach = "slim::slim_pipeline::teach";

  nn::decoder_config student_config() const {
    nn::decoder_config c = cfg_.student;
    c.vocab_size = static_cast<index_t>(tok_->vocab_size());
    return c;
  }

  bool stage_distil(const backend_type& be, Teacher& teacher) {
    pipeline_summary& sm = result_.summary;
    using T = typename traits::value_type;
    train::lm_teacher<T> kd;  // logit KD from an in-process teacher (kd_weight > 0)
    if (cfg_.distil.kd_weight > 0) {
      if constexpr (distill::LogitTeacher<Teacher> && std::is_same_v<T, float>) {
        require(teacher.vocab_size() == static_cast<index_t>(tok_->vocab_size()), "slim::slim_pipeline::distil",
                "the teacher's vocabulary (", teacher.vocab_size(), ") is not the student's (", tok_->vocab_size(),
                ")");
        kd = [&teacher](tensor_view<const std::int32_t, 2> ids, matrix_view<float> logits) {
          teacher.logits(ids, logits);
        };
      } else {
        throw error("slim::slim_pipeline::distil", "kd_weight",
                    "logit distillation needs an in-process teacher with logits (distill::LogitTeacher, e.g. "
                    "model_teacher) and a float student");
      }
    }
    const std::size_t labelled = art_.teach_users.size();
    const auto held = static_cast<std::size_t>(std::llround(cfg_.held_out_share * static_cast<double>(labelled)));
    const std::size_t fit_n = labelled - std::min(held, labelled);
    sm.distil_users = static_cast<index_t>(fit_n);
    sm.held_out_users = static_cast<index_t>(labelled - fit_n);
    std::vector<train::lm_example> pre, fit, eval;
    for (index_t i = 1; i <= data_->num_items; ++i)
      pre.push_back(distill::make_text_example(*tok_, data_->items[static_cast<std::size_t>(i)].text));
    for (std::size_t k = 0; k < labelled; ++k) {
      const index_t u = art_.teach_users[k];
      const std::string& r = art_.teacher_rationales[k];
      if (r.empty()) continue;
      auto ex = distill::make_example(*tok_, art_.student_prompts[static_cast<std::size_t>(u)], r);
      if (k < fit_n) {
        if (cfg_.pretrain_on_rationales) pre.push_back(distill::make_text_example(*tok_, r));
        fit.push_back(std::move(ex));
      } else {
        eval.push_back(std::move(ex));
      }
    }
    require(!fit.empty(), "slim::slim_pipeline::distil", "no teacher rationales to distil");
    auto json_of = [](const train::lm_train_config& c) { return train::detail::lm_settings_json(c); };
    io::json kj = {
        {"teach", keys_["teach"]},
        {"tokenizer", keys_["tokenizer"]},
        {"examples",  // the token ids trained on (prompts, scrubbed rationales, item texts)
         {train::detail::lm_data_json(pre), train::detail::lm_data_json(fit), train::detail::lm_data_json(eval)}},
        {"pretrain", json_of(cfg_.pretrain)},
        {"distil", json_of(cfg_.distil)},
        {"held_out", held},
        {"seed", cfg_.seed},
        {"pre_rationales", cfg_.pretrain_on_rationales},
        {"lora", {cfg_.lora.rank, cfg_.lora.alpha, cfg_.lora.dropout, cfg_.lora.use_rslora}},
        {"model",
         {cfg_.student.hidden_size, cfg_.student.intermediate_size, cfg_.student.num_layers, cfg_.student.num_heads,
          cfg_.student.num_kv_heads, cfg_.student.max_positions}}};
    const std::string key = detail::stage_key(kj);
    keys_["distil"] = key;
    base_ = std::make_unique<base_type>(student_config());
    nn::lora_config lc = cfg_.lora;
    lc.seed = cfg_.seed;
    student_ = std::make_unique<Student>(student_config(), lc);
    const bool resumed = have("distil", key, {"student_base.safetensors", "student_lora.safetensors"});
    if (resumed) {
      load_params(*base_, "student_base.safetensors", false);
      distill::copy_base_weights(*student_, *base_);
      load_params(*student_, "student_lora.safetensors", true);
    } else {
      base_->reset_parameters(cfg_.seed);
      train::lm_train_config pc = cfg_.pretrain;
      pc.seed = cfg_.seed;
      const index_t pre_total = train::lm_total_steps(static_cast<index_t>(pre.size()), pc);
      train::fit_lm(be, *base_, std::span<const train::lm_example>(pre), pc,
                    [&](const train::lm_step_event& e) { tick("pretrain", e.step, pre_total); });
      save_params(*base_, "student_base.safetensors", false);
      distill::copy_base_weights(*student_, *base_);
      train::lm_train_config dc = cfg_.distil;
      dc.seed = cfg_.seed + 1;
      const index_t total = train::lm_total_steps(static_cast<index_t>(fit.size()), dc);
      train::fit_lm(
          be, *student_, std::span<const train::lm_example>(fit), dc,
          [&](const train::lm_step_event& e) { tick("distil", e.step, total); }, kd);
      save_params(*student_, "student_lora.safetensors", true);
      done("distil", key);
    }
    if (!eval.empty()) {
      sm.held_out_nll = mean_nll(be, *student_, eval);
      sm.held_out_nll_undistilled = mean_nll(be, *base_, eval);
    }
    return resumed;
  }

  /// Mean token NLL of the completions of `ex` (token-weighted over all examples).
  template <class M>
  double mean_nll(const backend_type& be, M& model, const std::vector<train::lm_example>& ex) {
    using T = typename traits::value_type;
    train::token_nll<backend_type, T> loss;
    double sum = 0, count = 0;
    const index_t v = model.config().vocab_size;
    for (std::size_t i = 0; i < ex.size(); ++i) {
      const index_t row = static_cast<index_t>(i);
      train::lm_batch b = train::make_lm_batch(std::span<const train::lm_example>(ex),
                                               std::span<const index_t>(&row, 1), cfg_.distil.max_len);
      tensor<T, 2> logits({b.rows() * b.columns(), v});
      model.set_context(nn::step_context{});
      model.forward(be, b.ids.view(), logits.view());
      const double l =
          loss.forward(be, matrix_view<const T>(logits.view()),
                       vector_view<const std::int32_t>(b.targets.data(), {static_cast<index_t>(b.targets.size())}));
      sum += l * static_cast<double>(loss.counted());
      count += static_cast<double>(loss.counted());
    }
    return count > 0 ? sum / count : 0.0;
  }

  template <class M>
  void save_params(M& m, const std::string& name, bool adapters) {
    using T = typename traits::value_type;
    std::vector<io::tensor_entry> entries;
    auto add = [&](nn::parameter<T>& p) {
      const std::vector<index_t> shape =
          p.rank == 2 ? std::vector<index_t>{p.rows, p.cols} : std::vector<index_t>{p.cols};
      entries.push_back(io::f32_entry(
          p.name, shape, std::span<const float>(p.value.data(), static_cast<std::size_t>(p.value.size()))));
    };
    if (adapters)
      m.visit_adapters(add);
    else
      m.visit_base_parameters(add);
    io::write_safetensors(path(name), entries, {{"format", "slim pipeline student 1"}});
  }
  template <class M>
  void load_params(M& m, const std::string& name, bool adapters) {
    using T = typename traits::value_type;
    const io::safetensors_file f(path(name));
    auto get = [&](nn::parameter<T>& p) {
      require(f.contains(p.name), f.path().c_str(), "tensor ", p.name, " is missing");
      if (p.rank == 2)
        f.read(p.name, p.matrix());
      else
        f.read(p.name, p.vector());
    };
    if (adapters)
      m.visit_adapters(get);
    else
      m.visit_base_parameters(get);
  }

  bool stage_explain(const backend_type& be) {
    pipeline_summary& sm = result_.summary;
    train::detail::lm_hasher prompts_hash;
    for (const auto& p : art_.student_prompts) prompts_hash.bytes(p.data(), p.size() * sizeof(std::int32_t));
    const std::string key = detail::stage_key({{"distil", keys_["distil"]},
                                               {"max_new_tokens", cfg_.explain.max_new_tokens},
                                               {"users", data_->num_users()},
                                               {"prompts", prompts_hash.hex()}});
    keys_["explain"] = key;
    const auto n = static_cast<std::size_t>(data_->num_users());
    std::vector<std::size_t> rows;  // users with a prompt
    std::vector<std::vector<std::int32_t>> prompts;
    for (std::size_t u = 0; u < n; ++u)
      if (!art_.student_prompts[u].empty()) {
        rows.push_back(u);
        prompts.push_back(art_.student_prompts[u]);
      }
    const bool resumed = have("explain", key, {"rationales.jsonl", "rationales_undistilled.jsonl"});
    if (resumed) {
      art_.rationales = detail::read_texts(path("rationales.jsonl"), n);
      art_.rationales_undistilled = detail::read_texts(path("rationales_undistilled.jsonl"), n);
      const io::json m = io::read_json(path("explain.json"));
      sm.student_seconds_per_rationale = m.value("seconds_per_rationale", 0.0);
      sm.student_seconds_single = m.value("seconds_single", 0.0);
      sm.batch_mismatches = m.value("batch_mismatches", index_t{0});
    } else {
      art_.rationales.assign(n, {});
      art_.rationales_undistilled.assign(n, {});
      const auto t0 = std::chrono::steady_clock::now();
      auto gen = distill::explain(*student_, be, *tok_, std::span<const std::vector<std::int32_t>>(prompts),
                                  cfg_.explain, [&](index_t d, index_t t) { tick("explain", d, t); });
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      sm.student_seconds_per_rationale = prompts.empty() ? 0.0 : secs / static_cast<double>(prompts.size());
      {  // the same generation one prompt at a time, on a few users: the latency of a single rationale
        const std::size_t k = std::min<std::size_t>(32, prompts.size());
        distill::explain_options one = cfg_.explain;
        one.batch = 1;
        const auto t1 = std::chrono::steady_clock::now();
        const auto single =
            distill::explain(*student_, be, *tok_, std::span<const std::vector<std::int32_t>>(prompts).first(k), one,
                             [&](index_t d, index_t t) { tick("explain (one at a time)", d, t); });
        const double s1 = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
        sm.student_seconds_single = k ? s1 / static_cast<double>(k) : 0.0;
        for (std::size_t i = 0; i < k; ++i) sm.batch_mismatches += single[i] != gen[i];
      }
      auto gen0 = distill::explain(*base_, be, *tok_, std::span<const std::vector<std::int32_t>>(prompts), cfg_.explain,
                                   [&](index_t d, index_t t) { tick("explain (LoRA B = 0)", d, t); });
      for (std::size_t k = 0; k < rows.size(); ++k) {
        art_.rationales[rows[k]] = std::move(gen[k]);
        art_.rationales_undistilled[rows[k]] = std::move(gen0[k]);
      }
      detail::write_texts(path("rationales.jsonl"), art_.rationales);
      detail::write_texts(path("rationales_undistilled.jsonl"), art_.rationales_undistilled);
      io::write_json(path("explain.json"), io::json{{"seconds_per_rationale", sm.student_seconds_per_rationale},
                                                    {"seconds_single", sm.student_seconds_single},
                                                    {"batch_mismatches", sm.batch_mismatches}});
      done("explain", key);
    }
    index_t complete = 0, complete0 = 0;
    for (std::size_t u = 0; u < n; ++u) {
      const index_t m = scrub(art_.rationales[u], static_cast<index_t>(u));
      sm.student_mentions_removed += m;
      sm.student_users_with_mentions += m > 0;
      scrub(art_.rationales_undistilled[u], static_cast<index_t>(u));
      if (art_.student_prompts[u].empty()) continue;
      complete += prompt::parse_rationale(art_.rationales[u]).status == prompt::parse_status::complete;
      complete0 += prompt::parse_rationale(art_.rationales_undistilled[u]).status == prompt::parse_status::complete;
    }
    const double denom = std::max<double>(1.0, static_cast<double>(rows.size()));
    sm.parse_rate = static_cast<double>(complete) / denom;
    sm.parse_rate_undistilled = static_cast<double>(complete0) / denom;
    return resumed;
  }

  bool stage_embed(const backend_type& be) {
    train::detail::lm_hasher texts;  // every text embedded, after the leakage scrub
    auto eat = [&](const std::vector<std::string>& v) {
      for (const auto& t : v) texts.bytes(t.data(), t.size());
    };
    eat(art_.rationales);
    eat(art_.rationales_undistilled);
    if (cfg_.teacher_arm) eat(art_.teacher_rationales);
    for (index_t i = 1; i <= data_->num_items; ++i)
      texts.bytes(data_->items[static_cast<std::size_t>(i)].text.data(),
                  data_->items[static_cast<std::size_t>(i)].text.size());
    io::json kj = {{"explain", keys_["explain"]}, {"max_len", cfg_.embed_max_len}, {"texts", texts.hex()}};
    if (cfg_.teacher_arm) kj["teach"] = keys_["teach"];
    if (encoder_) kj["text_encoder"] = encoder_fingerprint_;
    const std::string key = detail::stage_key(kj);
    keys_["embed"] = key;
    const bool resumed = have("embed", key, {"embeddings.safetensors"});
    if (resumed) {
      const io::safetensors_file f(path("embeddings.safetensors"));
      art_.item_embeddings = detail::read_matrix(f, "items");
      art_.user_embeddings = detail::read_matrix(f, "users");
      art_.user_embeddings_undistilled = detail::read_matrix(f, "users_undistilled");
      if (cfg_.teacher_arm) art_.user_embeddings_teacher = detail::read_matrix(f, "users_teacher");
      return true;
    }
    // one embedder for every text (the pretrained student, no LoRA): arms differ only in the rationale text
    auto ids_of = [&](std::span<const std::string> texts) {
      std::vector<std::vector<std::int32_t>> ids;
      for (const auto& t : texts) ids.push_back(tok_->encode(t));
      return ids;
    };
    std::vector<std::string> items(static_cast<std::size_t>(data_->num_items + 1));
    for (index_t i = 1; i <= data_->num_items; ++i)
      items[static_cast<std::size_t>(i)] = data_->items[static_cast<std::size_t>(i)].text;
    auto embed = [&](std::span<const std::string> texts, std::string_view what) {
      const auto n = static_cast<index_t>(texts.size());
      tick(what, 0, n);
      tensor<float, 2> e;
      if (encoder_) {  // the sentence encoder, in chunks so progress moves
        e = tensor<float, 2>({n, encoder_->dimension()});
        constexpr index_t chunk = 256;
        for (index_t i = 0; i < n; i += chunk) {
          const index_t k = std::min(chunk, n - i);
          encoder_->embed(be, texts.subspan(static_cast<std::size_t>(i), static_cast<std::size_t>(k)),
                          matrix_view<float>(e.data() + i * e.extent(1), {k, e.extent(1)}), 32);
          tick(what, i + k, n);
        }
        return e;
      }
      e = distill::embed_ids(*base_, be, ids_of(texts), 64, cfg_.embed_max_len);
      tick(what, n, n);
      return e;
    };
    art_.item_embeddings = detail::standardize(embed(items, "embed items"), 1);
    art_.user_embeddings = detail::standardize(embed(art_.rationales, "embed rationales"), 0);
    art_.user_embeddings_undistilled =
        detail::standardize(embed(art_.rationales_undistilled, "embed rationales (LoRA B = 0)"), 0);
    std::vector<io::tensor_entry> entries;
    detail::write_matrix(entries, "items", art_.item_embeddings);
    detail::write_matrix(entries, "users", art_.user_embeddings);
    detail::write_matrix(entries, "users_undistilled", art_.user_embeddings_undistilled);
    if (cfg_.teacher_arm) {  // the labelled users' teacher rationales, standardised among themselves
      const tensor<float, 2> t = detail::standardize(embed(art_.teacher_rationales, "embed teacher rationales"), 0);
      const index_t h = t.extent(1);
      art_.user_embeddings_teacher = tensor<float, 2>({data_->num_users(), h});
      std::fill(art_.user_embeddings_teacher.data(),
                art_.user_embeddings_teacher.data() + art_.user_embeddings_teacher.size(), 0.0f);
      for (std::size_t k = 0; k < art_.teach_users.size(); ++k)
        for (index_t j = 0; j < h; ++j)
          art_.user_embeddings_teacher(art_.teach_users[k], j) = t(static_cast<index_t>(k), j);
      detail::write_matrix(entries, "users_teacher", art_.user_embeddings_teacher);
    }
    io::write_safetensors(path("embeddings.safetensors"), entries);
    done("embed", key);
    return false;
  }

  // ------------------------------------------------------------ recommend + evaluate
  bool stage_recommend() {
    const index_t n = data_->num_users();
    // the shuffled control: user u gets the rationale embedding of another user (a seeded derangement-ish
    // permutation: a random cyclic shift of a shuffled order, so nobody keeps their own)
    shuffled_ = tensor<float, 2>({n, art_.user_embeddings.extent(1)});
    {
      std::vector<index_t> order(static_cast<std::size_t>(n));
      std::iota(order.begin(), order.end(), index_t{0});
      philox_stream rng(cfg_.seed ^ 0x5b0ff1edull);
      for (std::size_t i = order.size(); i > 1; --i)
        std::swap(order[i - 1], order[rng.below(static_cast<std::uint32_t>(i))]);
      for (index_t k = 0; k < n; ++k) {
        const index_t to = order[static_cast<std::size_t>(k)], from = order[static_cast<std::size_t>((k + 1) % n)];
        for (index_t j = 0; j < shuffled_.extent(1); ++j) shuffled_(to, j) = art_.user_embeddings(from, j);
      }
    }
    std::vector<index_t> lengths(static_cast<std::size_t>(n));
    for (index_t u = 0; u < n; ++u)
      lengths[static_cast<std::size_t>(u)] = static_cast<index_t>(split_->train[static_cast<std::size_t>(u)].size());
    groups_ = metrics::make_sparsity_groups(lengths, 5);
    result_.summary.group_min = groups_.min_length;
    result_.summary.group_max = groups_.max_length;
    popularity_ = std::make_unique<metrics::item_popularity>(
        metrics::item_popularity::from_histories(split_->train, n, data_->num_items));
    // every (backbone, seed, arm) not on disk is a job; jobs run side by side, one thread each (these models
    // are too small for a thread pool to pay within one run), and each result lands in its own slot, so the
    // outcome is the same whatever the number of workers
    std::vector<std::function<void()>> jobs;
    std::vector<arm_run> slots;
    slots.reserve(sizeof...(Backbones) * cfg_.seeds.size() * arm_names().size());
    (plan_backbone<Backbones>(jobs, slots), ...);
    const std::size_t workers = std::max<std::size_t>(1, std::min(jobs.size(), pool_ ? pool_->threads() : 1));
    std::atomic<std::size_t> next{0};
    std::vector<std::exception_ptr> failures(workers);
    auto work = [&](std::size_t w) {
      try {
        for (std::size_t j = next++; j < jobs.size(); j = next++) jobs[j]();
      } catch (...) {
        failures[w] = std::current_exception();
        next = jobs.size();
      }
    };
    std::vector<std::thread> threads;
    for (std::size_t w = 1; w < workers; ++w) threads.emplace_back(work, w);
    work(0);
    for (auto& t : threads) t.join();
    for (const auto& f : failures)
      if (f) std::rethrow_exception(f);
    result_.runs = std::move(slots);
    return jobs.empty();
  }

  template <class Backbone>
  void plan_backbone(std::vector<std::function<void()>>& jobs, std::vector<arm_run>& slots) {
    const auto& mcfg = model_config<Backbone>();
    const auto& tcfg = train_config<Backbone>();
    std::filesystem::create_directories(path("runs"));
    const std::vector<std::string> names = arm_names();
    for (const std::uint64_t seed : cfg_.seeds)
      for (const std::string& arm : names) {
        io::json kj = {{"embed", keys_["embed"]},   {"backbone", std::string(Backbone::name)},
                       {"arm", std::string(arm)},   {"seed", seed},
                       {"model", model_json(mcfg)}, {"train", train_json(tcfg)}};
        const std::string key = detail::stage_key(kj);
        const std::string file =
            path("runs/" + std::string(Backbone::name) + "_" + arm_file(arm) + "_" + std::to_string(seed) + ".json");
        const std::size_t slot = slots.size();
        slots.emplace_back();
        if (std::filesystem::exists(file)) {
          const io::json j = io::read_json(file);
          if (j.value("key", std::string()) == key) {
            slots[slot] = from_json(j);
            continue;
          }
        }
        jobs.push_back([this, &slots, slot, key, file, seed, arm, &mcfg, &tcfg] {
          locked_tick(std::string(Backbone::name) + " " + std::string(arm) + " seed " + std::to_string(seed));
          arm_run r;
          if (arm == "backbone")
            r = train_arm<Backbone, rec::id_only>(mcfg, tcfg, seed, {});
          else if (arm == "+text")
            r = train_arm<Backbone, rec::text_concat>(mcfg, tcfg, seed, {items_view(), {}});
          else if (arm == "+SLIM")
            r = train_arm<Backbone, rec::slim_fusion>(mcfg, tcfg, seed, {items_view(), view(art_.user_embeddings)});
          else if (arm == "shuffled")
            r = train_arm<Backbone, rec::slim_fusion>(mcfg, tcfg, seed, {items_view(), view(shuffled_)});
          else if (arm == "+teacher")
            r = train_arm<Backbone, rec::slim_fusion>(mcfg, tcfg, seed,
                                                      {items_view(), view(art_.user_embeddings_teacher)});
          else if (arm == "undistilled")
            r = train_arm<Backbone, rec::slim_fusion>(mcfg, tcfg, seed,
                                                      {items_view(), view(art_.user_embeddings_undistilled)});
          else if (arm == "text-matching")
            r = train_arm<Backbone, rec::text_matching>(mcfg, tcfg, seed, {items_view(), view(art_.user_embeddings)});
          else
            throw error("slim::slim_pipeline::recommend", arm, "no such arm");
          r.backbone = std::string(Backbone::name);
          r.arm = std::string(arm);
          r.seed = seed;
          io::json j = to_json(r);
          j["key"] = key;
          io::write_json(file, j);
          slots[slot] = std::move(r);
        });
      }
  }

  void locked_tick(const std::string& what) {
    const std::lock_guard<std::mutex> lock(tick_mutex_);
    tick(what, 0, 0);
  }

  static std::string arm_file(std::string_view arm) {
    std::string s;
    for (const char c : arm)
      if (std::isalnum(static_cast<unsigned char>(c)))
        s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  static matrix_view<const float> view(const tensor<float, 2>& m) { return {m.data(), {m.extent(0), m.extent(1)}}; }
  matrix_view<const float> items_view() const { return view(art_.item_embeddings); }

  template <class Backbone>
  const typename Backbone::config_type& model_config() const {
    if constexpr (std::is_same_v<typename Backbone::config_type, rec::sasrec_config>)
      return cfg_.sasrec;
    else
      return cfg_.gru4rec;
  }
  template <class Backbone>
  const rec::train_config& train_config() const {
    if constexpr (std::is_same_v<typename Backbone::config_type, rec::sasrec_config>)
      return cfg_.sasrec_train;
    else
      return cfg_.gru4rec_train;
  }
  static io::json model_json(const rec::sasrec_config& c) {
    return {c.dim, c.blocks, c.heads, c.max_len, c.dropout, c.attention_dropout, static_cast<int>(c.loss)};
  }
  static io::json model_json(const rec::gru4rec_config& c) {
    return {c.embedding_size, c.hidden_size, c.max_len, c.dropout, c.gru_bias, static_cast<int>(c.loss)};
  }
  static io::json train_json(const rec::train_config& t) {
    return {t.epochs, t.batch_size, t.adam.lr,  t.adam.beta1,     t.adam.beta2,
            t.l2_emb, t.eval_every, t.patience, t.eval.negatives, t.eval.sampler_seed};
  }

  template <class Backbone, class Fusion>
  arm_run train_arm(const typename Backbone::config_type& mcfg, const rec::train_config& tcfg, std::uint64_t seed,
                    rec::side_information<float> side) {
    using model_t = typename Backbone::template model<Fusion>;
    // single-threaded: runs go side by side on the pool's threads instead (stage_recommend)
    const typename Backbone::backend_type rbe{};
    model_t model(mcfg, data_->num_items, seed, side);
    rec::train_config tc = tcfg;
    tc.seed = seed;
    tc.eval.top_k = std::max<index_t>(tc.eval.top_k, 10);
    const rec::train_report rep = rec::fit(rbe, model, *split_, tc);
    arm_run r;
    const auto& e = rep.test;
    for (std::size_t m = 0; m < e.sampled.names.size(); ++m) r.sampled[e.sampled.names[m]] = e.sampled.mean(m);
    for (std::size_t m = 0; m < e.full.names.size(); ++m) r.full[e.full.names[m]] = e.full.mean(m);
    std::vector<std::int32_t> targets;
    for (const index_t u : e.users) targets.push_back(split_->test[static_cast<std::size_t>(u)]);
    const metrics::bias_result b = metrics::bias_metrics(e.ranks.top, e.ranks.k, targets, *popularity_, {.k = 10});
    r.efd = b.efd;
    r.epc = b.epc;
    // sparsity groups over the evaluated users (test stage: every user with a test item)
    std::vector<double> sum(5, 0.0), cnt(5, 0.0);
    const auto nd = e.sampled.per_user("ndcg@10");
    for (std::size_t k = 0; k < e.users.size(); ++k) {
      const int g = groups_.group_of[static_cast<std::size_t>(e.users[k])];
      sum[static_cast<std::size_t>(g)] += nd[k];
      cnt[static_cast<std::size_t>(g)] += 1;
    }
    for (int g = 0; g < 5; ++g)
      r.groups.push_back(cnt[static_cast<std::size_t>(g)] > 0
                             ? sum[static_cast<std::size_t>(g)] / cnt[static_cast<std::size_t>(g)]
                             : 0.0);
    r.epochs = rep.epochs_run;
    r.seconds = rep.train_seconds + rep.eval_seconds;
    return r;
  }

 public:
  /// The recommender runs go side by side on as many threads as `pool` has (the student's backend carries its
  /// own pool); without one they run one after another.
  void set_pool(thread_pool* pool) noexcept { pool_ = pool; }

 private:
  static io::json to_json(const arm_run& r) {
    return {{"backbone", r.backbone}, {"arm", r.arm},        {"seed", r.seed},  {"sampled", r.sampled},
            {"full", r.full},         {"efd@10", r.efd},     {"epc@10", r.epc}, {"groups", r.groups},
            {"epochs", r.epochs},     {"seconds", r.seconds}};
  }
  static arm_run from_json(const io::json& j) {
    arm_run r;
    r.backbone = j.at("backbone").get<std::string>();
    r.arm = j.at("arm").get<std::string>();
    r.seed = j.at("seed").get<std::uint64_t>();
    r.sampled = j.at("sampled").get<std::map<std::string, double>>();
    r.full = j.at("full").get<std::map<std::string, double>>();
    r.efd = j.at("efd@10").get<double>();
    r.epc = j.at("epc@10").get<double>();
    r.groups = j.at("groups").get<std::vector<double>>();
    r.epochs = j.at("epochs").get<index_t>();
    r.seconds = j.at("seconds").get<double>();
    return r;
  }
  static io::json summary_json(const pipeline_summary& s) {
    return {{"users", s.users},
            {"items", s.items},
            {"interactions", s.interactions},
            {"teach_users", s.teach_users},
            {"distil_users", s.distil_users},
            {"held_out_users", s.held_out_users},
            {"held_out_nll", s.held_out_nll},
            {"held_out_nll_undistilled", s.held_out_nll_undistilled},
            {"parse_rate", s.parse_rate},
            {"parse_rate_undistilled", s.parse_rate_undistilled},
            {"teacher_prompt_tokens", s.teacher_prompt_tokens},
            {"teacher_completion_tokens", s.teacher_completion_tokens},
            {"teacher_dollars", s.teacher_dollars},
            {"student_seconds_per_rationale", s.student_seconds_per_rationale},
            {"student_seconds_single", s.student_seconds_single},
            {"batch_mismatches", s.batch_mismatches},
            {"teacher_mentions_removed", s.teacher_mentions_removed},
            {"student_mentions_removed", s.student_mentions_removed},
            {"teacher_users_with_mentions", s.teacher_users_with_mentions},
            {"student_users_with_mentions", s.student_users_with_mentions},
            {"stage_seconds", s.stage_seconds},
            {"stage_resumed", s.stage_resumed}};
  }

  void write_csv() const {
    std::string out =
        "backbone,arm,seed,sampled_ndcg@10,sampled_hr@10,sampled_hr@20,sampled_mrr@10,full_ndcg@10,"
        "full_hr@10,efd@10,epc@10,g1_ndcg@10,g2_ndcg@10,g3_ndcg@10,g4_ndcg@10,g5_ndcg@10,epochs,seconds\n";
    auto num = [](double v) {
      char b[32];
      std::snprintf(b, sizeof b, "%.6f", v);
      return std::string(b);
    };
    for (const arm_run& r : result_.runs) {
      auto get = [&](const std::map<std::string, double>& m, const char* k) {
        const auto it = m.find(k);
        return it == m.end() ? std::string("") : num(it->second);
      };
      out += r.backbone + "," + r.arm + "," + std::to_string(r.seed) + "," + get(r.sampled, "ndcg@10") + "," +
             get(r.sampled, "hr@10") + "," + get(r.sampled, "hr@20") + "," + get(r.sampled, "mrr@10") + "," +
             get(r.full, "ndcg@10") + "," + get(r.full, "hr@10") + "," + num(r.efd) + "," + num(r.epc);
      for (const double g : r.groups) out += "," + num(g);
      out += "," + std::to_string(r.epochs) + "," + num(r.seconds) + "\n";
    }
    io::write_file_atomic(path("results.csv"), out);
  }

  pipeline_config cfg_;
  pipeline_artefacts art_;
  pipeline_result result_;
  progress_fn progress_;
  const rec::dataset* data_ = nullptr;
  const rec::sequence_split* split_ = nullptr;
  io::json manifest_;
  std::map<std::string, std::string> keys_;
  std::unique_ptr<text::byte_bpe> tok_;
  prompt::title_catalogue catalogue_;
  std::unique_ptr<base_type> base_;
  std::unique_ptr<Student> student_;
  tensor<float, 2> shuffled_;
  metrics::sparsity_groups groups_;
  std::unique_ptr<metrics::item_popularity> popularity_;
  thread_pool* pool_ = nullptr;
  std::mutex tick_mutex_;
  text_encoder_type* encoder_ = nullptr;
  std::string encoder_fingerprint_;
};

}  // namespace slim::pipeline

namespace slim {
using pipeline::slim_pipeline;
}  // namespace slim
