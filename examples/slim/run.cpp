// `slim run`: the main job — the SLIM pipeline end to end on the embedded synthetic world (or on a world a
// JSON config describes): oracle teacher → student distillation → rationales for every user → embeddings →
// SASRec and GRU4Rec with and without them, plus the controls → the results table, results.csv, a PNG chart
// and a run manifest in the run directory. Progress goes to stderr, the table to stdout.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <xsimd/xsimd.hpp>

#include "commands.hpp"
#include "cpu.hpp"
#include "parse.hpp"
#include "slim/backend/simd.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/distill/oracle_teacher.hpp"
#include "slim/distill/recorded_sets.hpp"
#include "slim/distill/recorded_teacher.hpp"
#include "slim/io/json.hpp"
#include "slim/pipeline/chart.hpp"
#include "slim/pipeline/report.hpp"
#include "slim/pipeline/slim_pipeline.hpp"
#include "slim/rec/split.hpp"
#include "slim/synth/world.hpp"
#include "str.hpp"

namespace slim::cli {
namespace {

constexpr const char* run_usage =
    "usage: slim run [--config FILE] [--data SET] [--data-dir DIR] [--text-encoder DIR] [--run-dir DIR]\n"
    "                [--threads N] [--seeds N] [--quick] [--fresh]\n"
    "  (no options)     the synthetic world end to end: 1,000 users, 480 items, 5 seeds, SASRec and GRU4Rec\n"
    "  --config FILE    a JSON experiment (docs/pipeline.md): \"world\", \"oracle\", \"data\", \"pipeline\" sections\n"
    "  --data SET       real data with recorded teacher rationales instead of the synthetic world:\n"
    "                   nir_ml100k (GPT-3 on ML-100K) or agent4rec_ml1m (gpt-3.5-turbo on ML-1M)\n"
    "  --data-dir DIR   where the data sets are (default $SLIM_DATA_DIR, else ../shared/data)\n"
    "  --text-encoder DIR  embed texts with this sentence-transformers folder (all-MiniLM-L6-v2) instead of\n"
    "                   the student\n"
    "  --run-dir DIR    artefacts, manifest.json, results.csv, results.png (default slim_run)\n"
    "  --threads N      thread pool size (default: every core)\n"
    "  --seeds N        recommender seeds 1..N (default 5; wins over a config's seeds)\n"
    "  --quick          a smaller world (or 120 labelled users) and fewer epochs: a smoke run\n"
    "  --fresh          ignore artefacts already in the run directory\n";

#if XSIMD_WITH_FMA3_AVX2
using cpu = backend::simd<xsimd::fma3<xsimd::avx2>>;
constexpr const char* cpu_name = "simd<fma3<avx2>>";
#else
using cpu = backend::simd<xsimd::sse2>;
constexpr const char* cpu_name = "simd<sse2>";
#endif

/// The pipeline the `slim` program has compiled in (README, "The main job").
using student =
    nn::decoder_lm<cpu,
                   nn::lora<nn::q_proj, nn::k_proj, nn::v_proj, nn::o_proj, nn::gate_proj, nn::up_proj, nn::down_proj>>;
using main_pipeline =
    slim_pipeline<distill::oracle_teacher, student, pipeline::sasrec_backbone<cpu>, pipeline::gru4rec_backbone<cpu>>;
/// The same pipeline on real data, taught by recorded LLM rationales (`slim run --data SET`).
using recorded_pipeline =
    slim_pipeline<distill::recorded_teacher, student, pipeline::sasrec_backbone<cpu>, pipeline::gru4rec_backbone<cpu>>;

struct run_options {
  std::string config, run_dir = "slim_run", data, data_dir, text_encoder;
  long long threads = 0, seeds = 5;
  bool quick = false, fresh = false, seeds_given = false;
};

run_options parse(args a) {
  run_options o;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const std::string_view k = a[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= a.size()) throw usage_error(str(k, " needs a value"));
      return a[++i];
    };
    if (k == "--help" || k == "-h") {
      std::fputs(run_usage, stdout);
      std::exit(0);
    } else if (k == "--config") {
      o.config = std::string(value());
    } else if (k == "--data") {
      o.data = std::string(value());
      if (o.data != "nir_ml100k" && o.data != "agent4rec_ml1m")
        throw usage_error(str("--data: unknown set '", o.data, "' (nir_ml100k, agent4rec_ml1m)"));
    } else if (k == "--text-encoder") {
      o.text_encoder = std::string(value());
    } else if (k == "--data-dir") {
      o.data_dir = std::string(value());
    } else if (k == "--run-dir") {
      o.run_dir = std::string(value());
    } else if (k == "--threads") {
      o.threads = parse_int("--threads", value(), 1, 1024);
    } else if (k == "--seeds") {
      o.seeds = parse_int("--seeds", value(), 1, 100);
      o.seeds_given = true;
    } else if (k == "--quick") {
      o.quick = true;
    } else if (k == "--fresh") {
      o.fresh = true;
    } else {
      throw usage_error(str("unknown option '", k, "'\n", run_usage));
    }
  }
  return o;
}

/// Reads `key` of section `j` into `v` when present (type-checked by nlohmann; errors name the file and key).
template <class T>
void take(const io::json& j, const char* key, T& v, const std::string& file, const std::string& section) {
  if (!j.contains(key)) return;
  try {
    v = j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw error(file, section + "." + key, e.what());
  }
}

/// The "data" section: a real data set and how much of its recorded texts to use.
struct data_choice {
  std::string set;  ///< "" (the synthetic world), nir_ml100k, agent4rec_ml1m
  std::string dir;  ///< the data root ("" : $SLIM_DATA_DIR, else ../shared/data)
  distill::agent4rec_options agent4rec;
  std::string text_encoder;  ///< a sentence-transformers folder ("" : the student embeds)
};

/// Every key of `j` must be one of `known` (a typo is an error, not a silently ignored setting).
void known_keys(const io::json& j, std::initializer_list<std::string_view> known, const std::string& file,
                const std::string& section) {
  if (!j.is_object()) throw error(file, section, "a section is a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (std::find(known.begin(), known.end(), it.key()) == known.end())
      throw error(file, section + "." + it.key(), "unknown setting");
}

void apply_config(const std::string& file, synth::world_config& w, synth::oracle_config& oc,
                  pipeline::pipeline_config& p, data_choice& dc) {
  const io::json j = io::read_json(file);
  if (!j.is_object()) throw error(file, "", "an experiment config is a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "world" && it.key() != "oracle" && it.key() != "pipeline" && it.key() != "data")
      throw error(file, it.key(), "unknown section (world, oracle, data, pipeline)");
  if (j.contains("data")) {
    const auto& s = j["data"];
    known_keys(s, {"set", "dir", "variant", "max_blocks", "max_titles", "summaries"}, file, "data");
    take(s, "set", dc.set, file, "data");
    if (!dc.set.empty() && dc.set != "nir_ml100k" && dc.set != "agent4rec_ml1m")
      throw error(file, "data.set", "unknown set '" + dc.set + "' (nir_ml100k, agent4rec_ml1m)");
    take(s, "dir", dc.dir, file, "data");
    take(s, "variant", dc.agent4rec.variant, file, "data");
    take(s, "max_blocks", dc.agent4rec.max_blocks, file, "data");
    take(s, "max_titles", dc.agent4rec.max_titles, file, "data");
    take(s, "summaries", dc.agent4rec.summaries, file, "data");
    if (dc.set == "nir_ml100k")
      for (const char* k : {"variant", "max_blocks", "max_titles", "summaries"})
        if (s.contains(k)) throw error(file, std::string("data.") + k, "applies to agent4rec_ml1m only");
  }
  if (j.contains("world")) {
    const auto& s = j["world"];
    known_keys(s,
               {"seed", "num_users", "num_categories", "num_brands", "items_per_category", "min_length", "max_length",
                "popularity_skew", "taste_focus", "drift"},
               file, "world");
    take(s, "seed", w.seed, file, "world");
    take(s, "num_users", w.num_users, file, "world");
    take(s, "num_categories", w.num_categories, file, "world");
    take(s, "num_brands", w.num_brands, file, "world");
    take(s, "items_per_category", w.items_per_category, file, "world");
    take(s, "min_length", w.min_length, file, "world");
    take(s, "max_length", w.max_length, file, "world");
    take(s, "popularity_skew", w.popularity_skew, file, "world");
    take(s, "taste_focus", w.taste_focus, file, "world");
    take(s, "drift", w.drift, file, "world");
  }
  if (j.contains("oracle")) {
    known_keys(j["oracle"], {"reveal", "n_items", "source", "window"}, file, "oracle");
    take(j["oracle"], "reveal", oc.reveal, file, "oracle");
    take(j["oracle"], "n_items", oc.n_items, file, "oracle");
    std::string source = oc.source == synth::taste_source::history ? "history" : "latent";
    take(j["oracle"], "source", source, file, "oracle");
    if (source != "latent" && source != "history")
      throw error(file, "oracle.source", str("must be \"latent\" or \"history\", got \"", source, "\""));
    oc.source = source == "history" ? synth::taste_source::history : synth::taste_source::latent;
    take(j["oracle"], "window", oc.window, file, "oracle");
  }
  if (j.contains("pipeline")) {
    const auto& s = j["pipeline"];
    known_keys(s,
               {"seed",
                "teach_users",
                "seeds",
                "vocab_size",
                "pretrain_epochs",
                "distil_epochs",
                "distil_batch",
                "distil_lr",
                "pretrain_lr",
                "pretrain_on_rationales",
                "max_history",
                "lora_alpha",
                "lora_rank",
                "hidden_size",
                "num_layers",
                "teacher_arm",
                "text_matching_arm",
                "text_encoder",
                "pretrain_max_len",
                "distil_max_len",
                "max_new_tokens",
                "embed_max_len",
                "token_budget",
                "rec_max_len",
                "sasrec_dim",
                "gru4rec_hidden",
                "rec_epochs",
                "gru4rec_epochs",
                "rec_patience",
                "rec_eval_every",
                "price_prompt_per_1k",
                "price_completion_per_1k"},
               file, "pipeline");
    take(s, "seed", p.seed, file, "pipeline");
    take(s, "teach_users", p.teach_users, file, "pipeline");
    take(s, "seeds", p.seeds, file, "pipeline");
    take(s, "vocab_size", p.vocab_size, file, "pipeline");
    take(s, "pretrain_epochs", p.pretrain.epochs, file, "pipeline");
    take(s, "distil_epochs", p.distil.epochs, file, "pipeline");
    take(s, "distil_batch", p.distil.batch_size, file, "pipeline");
    take(s, "distil_lr", p.distil.lr, file, "pipeline");
    take(s, "pretrain_lr", p.pretrain.lr, file, "pipeline");
    take(s, "pretrain_on_rationales", p.pretrain_on_rationales, file, "pipeline");
    take(s, "max_history", p.prompt.max_history, file, "pipeline");
    take(s, "lora_alpha", p.lora.alpha, file, "pipeline");
    take(s, "lora_rank", p.lora.rank, file, "pipeline");
    take(s, "hidden_size", p.student.hidden_size, file, "pipeline");
    take(s, "num_layers", p.student.num_layers, file, "pipeline");
    take(s, "teacher_arm", p.teacher_arm, file, "pipeline");
    take(s, "text_matching_arm", p.text_matching_arm, file, "pipeline");
    take(s, "text_encoder", dc.text_encoder, file, "pipeline");
    take(s, "pretrain_max_len", p.pretrain.max_len, file, "pipeline");
    take(s, "distil_max_len", p.distil.max_len, file, "pipeline");
    take(s, "max_new_tokens", p.explain.max_new_tokens, file, "pipeline");
    take(s, "embed_max_len", p.embed_max_len, file, "pipeline");
    take(s, "token_budget", p.prompt.token_budget, file, "pipeline");
    take(s, "rec_max_len", p.sasrec.max_len, file, "pipeline");
    p.gru4rec.max_len = p.sasrec.max_len;
    take(s, "sasrec_dim", p.sasrec.dim, file, "pipeline");
    take(s, "gru4rec_hidden", p.gru4rec.hidden_size, file, "pipeline");
    take(s, "rec_epochs", p.sasrec_train.epochs, file, "pipeline");
    p.gru4rec_train.epochs = p.sasrec_train.epochs;
    take(s, "gru4rec_epochs", p.gru4rec_train.epochs, file, "pipeline");
    take(s, "rec_patience", p.sasrec_train.patience, file, "pipeline");
    p.gru4rec_train.patience = p.sasrec_train.patience;
    take(s, "rec_eval_every", p.sasrec_train.eval_every, file, "pipeline");
    p.gru4rec_train.eval_every = p.sasrec_train.eval_every;
    take(s, "price_prompt_per_1k", p.price_prompt_per_1k, file, "pipeline");
    take(s, "price_completion_per_1k", p.price_completion_per_1k, file, "pipeline");
  }
}

/// Progress on stderr: a bar redrawn in place on a terminal; elsewhere (a log file) one line per tenth.
class progress_bar {
 public:
  progress_bar() : tty_(::isatty(2) != 0) {}

  void operator()(std::string_view stage, index_t done, index_t total) {
    if (total == 0) {
      finish();
      std::fprintf(stderr, "[slim run] %.*s\n", static_cast<int>(stage.size()), stage.data());
      return;
    }
    if (stage != stage_) {
      finish();
      stage_ = std::string(stage);
      tenth_ = -1;
    }
    if (!tty_) {
      const int tenth = static_cast<int>(10 * done / total);
      if (tenth == tenth_) return;
      tenth_ = tenth;
      std::fprintf(stderr, "  %-26.*s %3d%% (%lld/%lld)\n", static_cast<int>(stage.size()), stage.data(), 10 * tenth,
                   static_cast<long long>(done), static_cast<long long>(total));
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const int width = 30, fill = static_cast<int>(width * done / total);
    std::fprintf(stderr, "\r  %-26.*s [%.*s%.*s] %lld/%lld", static_cast<int>(stage.size()), stage.data(), fill,
                 "##############################", width - fill, "------------------------------",
                 static_cast<long long>(done), static_cast<long long>(total));
    open_ = true;
    if (done >= total) finish();
    std::fflush(stderr);
  }
  void finish() {
    if (open_) std::fputc('\n', stderr);
    open_ = false;
  }

 private:
  bool tty_;
  std::string stage_;
  int tenth_ = -1;
  std::chrono::steady_clock::time_point last_{};
  bool open_ = false;
};

}  // namespace

namespace {

/// The folder's path and a hash of every regular file directly in it (config, tokenizer, weights).
std::string folder_fingerprint(const std::string& dir) {
  train::detail::lm_hasher h;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    const std::string name = f.filename().string(), bytes = io::read_file(f.string());
    h.bytes(name.data(), name.size());
    h.bytes(bytes.data(), bytes.size());
  }
  return std::filesystem::absolute(dir).string() + " " + h.hex();
}

/// Runs pipeline `P` with `teacher` on `data`, prints the table (and whatever `extra` adds), writes the chart.
template <class P, class Teacher, class Extra>
int run_and_report(P& p, Teacher& teacher, const rec::dataset& data, const rec::sequence_split& split,
                   const pipeline::pipeline_config& pc, const std::string& encoder_dir, cpu& be, thread_pool& pool,
                   std::chrono::steady_clock::time_point t0, Extra&& extra) {
  p.set_pool(&pool);
  std::optional<typename P::text_encoder_type> encoder;
  if (!encoder_dir.empty()) {
    encoder.emplace(P::text_encoder_type::from_pretrained(encoder_dir));
    p.set_text_encoder(&*encoder, folder_fingerprint(encoder_dir));
    std::fprintf(stderr, "[slim run] texts embedded by %s (%lld-dimensional)\n", encoder_dir.c_str(),
                 static_cast<long long>(encoder->dimension()));
  }
  progress_bar bar;
  const pipeline::pipeline_result r =
      p.run(teacher, data, split, be, [&](std::string_view s, index_t d, index_t t) { bar(s, d, t); });
  bar.finish();
  const std::vector<std::string> backbones = {"SASRec", "GRU4Rec"};
  const std::vector<std::string> arms = p.arm_names();
  std::fputs(pipeline::results_table(r, backbones, arms).c_str(), stdout);
  extra(p);
  pipeline::write_chart(pc.run_dir + "/results.png", r, backbones, arms);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("\nWrote %s/results.csv, results.png, manifest.json; %.1f s in all\n", pc.run_dir.c_str(), secs);
  return 0;
}

std::string data_root(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* e = std::getenv("SLIM_DATA_DIR"); e != nullptr && *e != '\0') return e;
  return "../shared/data";
}

}  // namespace

int run_run(args a) {
  const run_options o = parse(a);
  const cpu_features f = cpu_features::detect();
#if XSIMD_WITH_FMA3_AVX2
  if (!f.runs_fma3_avx2())
    throw error("slim run", cpu_name, "this program was built for AVX2+FMA, which this CPU lacks: rebuild here");
#endif
  synth::world_config wc;
  synth::oracle_config oc;
  pipeline::pipeline_config pc;
  data_choice dc;
  dc.set = o.data;
  dc.dir = o.data_dir;
  pc.run_dir = o.run_dir;
  pc.prompt.domain = "games";
  pc.prompt.item_kind = "game";
  pc.prompt.category_kind = "genres and brands";
  auto seeds_1_to = [&](long long n) {
    pc.seeds.clear();
    for (long long s = 1; s <= n; ++s) pc.seeds.push_back(static_cast<std::uint64_t>(s));
  };
  seeds_1_to(o.seeds);
  if (!o.config.empty()) {
    // a config naming a data set starts from the real-data defaults, so peek at its set first
    const io::json j = io::read_json(o.config);
    if (j.is_object() && j.contains("data") && j["data"].is_object() && j["data"].contains("set") &&
        j["data"]["set"].is_string() && dc.set.empty())
      dc.set = j["data"]["set"].get<std::string>();
  }
  // the order settings are applied in: real-data defaults, --quick, the config file, then the command line's
  // own options, which win over the file
  if (!dc.set.empty()) {  // real data: movies, every recorded user labelled, the teacher's own arm
    pc.prompt.domain = "movies";
    pc.prompt.item_kind = "movie";
    pc.prompt.category_kind = "genres";
    pc.prompt.token_budget = 320;
    pc.teach_users = 1000000;
    pc.teacher_arm = true;
    pc.distil.max_len = 384;
    pc.pretrain.max_len = 256;
    pc.explain.max_new_tokens = 160;
    pc.embed_max_len = 256;
    pc.sasrec.max_len = pc.gru4rec.max_len = 50;
    dc.agent4rec.max_blocks = 4;
    dc.agent4rec.max_titles = 5;
  }
  if (o.quick) {
    wc.num_users = 300;
    wc.num_categories = 6;
    wc.items_per_category = 30;
    pc.teach_users = 120;
    pc.pretrain.epochs = 2;
    pc.distil.epochs = 2;
    pc.sasrec_train.epochs = pc.gru4rec_train.epochs = 10;
  }
  if (!o.config.empty()) apply_config(o.config, wc, oc, pc, dc);
  if (!o.data.empty()) dc.set = o.data;
  if (!o.data_dir.empty()) dc.dir = o.data_dir;
  if (o.seeds_given) seeds_1_to(o.seeds);
  if (!o.text_encoder.empty()) dc.text_encoder = o.text_encoder;
  if (dc.set.empty() && !dc.dir.empty())
    throw usage_error("--data-dir (or data.dir) names where the real data sets are: it needs --data SET");
  if (o.fresh) std::filesystem::remove_all(pc.run_dir);

  const unsigned threads =
      o.threads > 0 ? static_cast<unsigned>(o.threads) : std::max(1u, std::thread::hardware_concurrency());
  thread_pool pool(threads);
  cpu be{};
  be.pool = &pool;
  const auto t0 = std::chrono::steady_clock::now();

  if (!dc.set.empty()) {
    const std::string root = data_root(dc.dir);
    const distill::recorded_set set =
        dc.set == "nir_ml100k"
            ? distill::load_nir_ml100k((std::filesystem::path(root) / "rationales" / "nir_ml100k").string())
            : distill::load_agent4rec_ml1m((std::filesystem::path(root) / "rationales" / "agent4rec_ml1m").string(),
                                           (std::filesystem::path(root) / "ml-1m").string(), dc.agent4rec);
    const rec::sequence_split split = rec::leave_one_out(set.data);
    distill::recorded_teacher teacher = set.teacher();
    std::fprintf(stderr,
                 "[slim run] %s: %lld users, %lld items, %lld interactions; recorded teacher %s, %lld rationales "
                 "(%s); backend %s, %u threads; run dir %s\n",
                 set.data.name.c_str(), static_cast<long long>(set.data.num_users()),
                 static_cast<long long>(set.data.num_items), static_cast<long long>(set.data.num_interactions()),
                 set.teacher_model.c_str(), static_cast<long long>(teacher.size()), teacher.source().c_str(), cpu_name,
                 threads, pc.run_dir.c_str());
    recorded_pipeline p(pc);
    return run_and_report(
        p, teacher, set.data, split, pc, dc.text_encoder, be, pool, t0, [&](const recorded_pipeline&) {
          std::printf(
              "Recorded teacher: %s rationales from %s; their token counts above are the student tokenizer's "
              "count of our prompt and of the recorded text, not the source's bill\n",
              set.teacher_model.c_str(), teacher.source().c_str());
        });
  }

  const synth::world world = synth::make_world(wc);
  const rec::sequence_split split = rec::leave_one_out(world.data);
  distill::oracle_teacher teacher(world, split, oc);
  std::fprintf(stderr,
               "[slim run] synthetic world: %lld users, %lld items, %lld interactions (seed %llu); backend %s, %u "
               "threads; run dir %s\n",
               static_cast<long long>(world.data.num_users()), static_cast<long long>(world.data.num_items),
               static_cast<long long>(world.data.num_interactions()), static_cast<unsigned long long>(wc.seed),
               cpu_name, threads, pc.run_dir.c_str());
  main_pipeline p(pc);
  return run_and_report(p, teacher, world.data, split, pc, dc.text_encoder, be, pool, t0, [&](const main_pipeline& q) {
    // The synthetic world knows the truth: how often does the student, on users the teacher never labelled,
    // write the oracle's own step 1 (preferences) and step 2 (categories and brands)?
    const auto& art = q.artefacts();
    std::vector<bool> labelled(static_cast<std::size_t>(world.data.num_users()), false);
    for (const index_t u : art.teach_users) labelled[static_cast<std::size_t>(u)] = true;
    auto line = [](const std::string& t, int k) {
      std::size_t b = 0;
      for (int i = 0; i < k && b != std::string::npos; ++i)
        b = t.find('\n', b) == std::string::npos ? std::string::npos : t.find('\n', b) + 1;
      if (b == std::string::npos) return std::string();
      return t.substr(b, t.find('\n', b) == std::string::npos ? std::string::npos : t.find('\n', b) - b);
    };
    index_t n = 0, s1 = 0, s2 = 0;
    std::set<std::string> distinct;
    for (index_t u = 0; u < world.data.num_users(); ++u) {
      const std::string& mine = art.rationales[static_cast<std::size_t>(u)];
      distinct.insert(mine);
      if (labelled[static_cast<std::size_t>(u)] || mine.empty()) continue;
      const std::string truth = teacher.oracle().rationale(u);
      ++n;
      s1 += line(mine, 0) == line(truth, 0);
      s2 += line(mine, 1) == line(truth, 1);
    }
    std::printf(
        "Student vs oracle on %lld unlabelled users: step 1 identical %.1f%%, step 2 identical %.1f%%; "
        "%zu distinct rationales of %lld\n",
        static_cast<long long>(n), n ? 100.0 * static_cast<double>(s1) / static_cast<double>(n) : 0.0,
        n ? 100.0 * static_cast<double>(s2) / static_cast<double>(n) : 0.0, distinct.size(),
        static_cast<long long>(world.data.num_users()));
  });
}

}  // namespace slim::cli
