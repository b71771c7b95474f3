// Tests of slim_pipeline on a tiny synthetic world: every stage runs and writes its artefact, no evaluated
// user's prompt, rationale or embedding input names their validation or test item, a rerun resumes every
// stage from disk with identical results, and a changed setting reruns only the stages it affects.
// SPDX-License-Identifier: Apache-2.0
#include <catch2/catch.hpp>
#include <cctype>
#include <filesystem>
#include <set>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/simd.hpp"
#include "slim/core/philox.hpp"
#include "slim/core/thread_pool.hpp"
#include "slim/distill/leakage.hpp"
#include "slim/distill/model_teacher.hpp"
#include "slim/distill/oracle_teacher.hpp"
#include "slim/distill/recorded_teacher.hpp"
#include "slim/nn/sentence_encoder.hpp"
#include "slim/pipeline/report.hpp"
#include "slim/pipeline/slim_pipeline.hpp"
#include "slim/rec/split.hpp"
#include "slim/synth/world.hpp"

namespace {

using namespace slim;
using cpu = backend::simd<xsimd::sse2>;
using student = nn::decoder_lm<cpu, nn::lora<nn::q_proj, nn::v_proj>>;
using tiny_pipeline =
    slim_pipeline<distill::oracle_teacher, student, pipeline::sasrec_backbone<cpu>, pipeline::gru4rec_backbone<cpu>>;

/// A configuration small enough for a unit test (seconds), with every stage still doing real work.
pipeline::pipeline_config tiny_config(const std::string& dir) {
  pipeline::pipeline_config c;
  c.run_dir = dir;
  c.teach_users = 40;
  c.held_out_share = 0.2;
  c.vocab_size = 400;
  c.student.hidden_size = 32;
  c.student.intermediate_size = 64;
  c.student.num_layers = 1;
  c.student.num_heads = 2;
  c.student.num_kv_heads = 1;
  c.lora.rank = 4;
  c.pretrain.epochs = 1;
  c.distil.epochs = 2;
  c.explain.max_new_tokens = 16;
  c.seeds = {1, 2};
  c.sasrec.dim = 16;
  c.sasrec.max_len = 16;
  c.gru4rec.embedding_size = 16;
  c.gru4rec.hidden_size = 16;
  c.gru4rec.max_len = 16;
  c.sasrec_train.epochs = c.gru4rec_train.epochs = 2;
  c.sasrec_train.eval_every = c.gru4rec_train.eval_every = 1;
  // the tiny world has 80 items: 100 sampled negatives do not exist
  c.sasrec_train.eval.negatives = c.gru4rec_train.eval.negatives = 30;
  c.prompt.domain = "games";
  c.prompt.item_kind = "game";
  return c;
}

#if defined(__SANITIZE_ADDRESS__)
/// Under AddressSanitizer training runs ~20x slower: the model-teacher case trains its teacher briefly and does
/// not check what the teacher learned (the release build does), only the plumbing.
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

/// The cases that test plumbing (which stage reruns, which file is written, which arm exists) and not what
/// the student learned: under AddressSanitizer their language-model training is cut to two optimizer steps
/// per stage, since it is most of their time there (every code path still runs; the release build trains
/// the full tiny schedule).
pipeline::pipeline_config plumbing_config(const std::string& dir) {
  pipeline::pipeline_config c = tiny_config(dir);
  if (sanitized) {
    c.pretrain.max_steps = 2;
    c.distil.max_steps = 2;
  }
  return c;
}

std::string fresh_dir(const std::string& name) {
  const auto d = std::filesystem::temp_directory_path() / ("slim_test_pipeline_" + name);
  std::filesystem::remove_all(d);
  return d.string();
}

}  // namespace

TEST_CASE("slim_pipeline: every stage runs, nothing leaks, a rerun resumes with identical results", "[pipeline]") {
  const synth::world w = synth::make_world(synth::world_config::tiny(3));
  const rec::sequence_split split = rec::leave_one_out(w.data);
  distill::oracle_teacher teacher(w, split);
  const std::string dir = fresh_dir("run");
  tiny_pipeline p(tiny_config(dir));
  const cpu be{};
  const pipeline::pipeline_result r = p.run(teacher, w.data, split, be);

  // every arm of every backbone ran for every seed, with finite metrics in [0, 1]
  // the default arms plus the ID-agnostic text-matching arm (pipeline_config::text_matching_arm)
  REQUIRE(p.arm_names().size() == tiny_pipeline::arms.size() + 1);
  CHECK(p.arm_names().back() == "text-matching");
  REQUIRE(r.runs.size() == 2 * p.arm_names().size() * 2);
  for (const auto& a : r.runs) {
    for (const auto& [k, v] : a.sampled) CHECK((v >= 0 && v <= 1));
    CHECK(a.sampled.count("ndcg@10") == 1);
    CHECK(a.full.count("ndcg@10") == 1);
    CHECK(a.groups.size() == 5);
  }
  for (const char* f :
       {"manifest.json", "results.csv", "tokenizer.json", "teacher.jsonl", "student_base.safetensors",
        "student_lora.safetensors", "rationales.jsonl", "rationales_undistilled.jsonl", "embeddings.safetensors"})
    CHECK(std::filesystem::exists(std::filesystem::path(dir) / f));
  const auto& s = r.summary;
  CHECK(s.teach_users == 40);
  CHECK(s.held_out_users == 8);
  CHECK(s.held_out_nll > 0);
  // distillation lowers the NLL of rationales the student never saw (LoRA B = 0 is the same model untrained)
  CHECK(s.held_out_nll < s.held_out_nll_undistilled);
  CHECK(s.teacher_prompt_tokens > 0);
  CHECK(s.teacher_dollars > 0);
  // greedy rationales do not depend on the batch: 32 users generated one at a time match the batched run
  CHECK(s.batch_mismatches == 0);
  CHECK(s.student_seconds_single > 0);

  // ---- no leakage: for every user evaluated on a held-out item, nothing that shapes their representation
  // names it (by title; prompts list titles only, never ids)
  const auto& art = p.artefacts();
  const prompt::title_catalogue titles = prompt::title_catalogue::from_lookup(
      [&](rec::item_id i) { return w.data.items[static_cast<std::size_t>(i)].title; }, 1,
      static_cast<rec::item_id>(w.data.num_items));
  index_t checked = 0;
  for (index_t u = 0; u < split.num_users(); ++u) {
    const auto held = distill::held_out_items(split, u);
    if (held.empty()) continue;
    // held-out items the user also has in the training prefix are history, not leakage (synth has no repeats)
    for (const rec::item_id h : held)
      REQUIRE(std::find(split.train[static_cast<std::size_t>(u)].begin(),
                        split.train[static_cast<std::size_t>(u)].end(),
                        h) == split.train[static_cast<std::size_t>(u)].end());
    CHECK_FALSE(distill::mentions_any(art.student_prompt_text[static_cast<std::size_t>(u)], held, titles));
    CHECK_FALSE(distill::mentions_any(art.rationales[static_cast<std::size_t>(u)], held, titles));
    CHECK_FALSE(distill::mentions_any(art.rationales_undistilled[static_cast<std::size_t>(u)], held, titles));
    ++checked;
  }
  CHECK(checked == split.num_users());
  for (std::size_t k = 0; k < art.teach_users.size(); ++k) {
    const auto held = distill::held_out_items(split, art.teach_users[k]);
    CHECK_FALSE(distill::mentions_any(art.teacher_prompts[k], held, titles));
    CHECK_FALSE(distill::mentions_any(art.teacher_rationales[k], held, titles));
  }
  // the guard is not idle: the oracle names pool items and some of them are held out
  CHECK(s.teacher_mentions_removed > 0);

  // ---- resume: a second pipeline on the same directory loads every artefact and reproduces the results
  tiny_pipeline p2(tiny_config(dir));
  const pipeline::pipeline_result r2 = p2.run(teacher, w.data, split, be);
  for (const char* stage : {"tokenizer", "teach", "distil", "explain", "embed", "recommend"})
    CHECK(r2.summary.stage_resumed.at(stage));
  REQUIRE(r2.runs.size() == r.runs.size());
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    CHECK(r2.runs[i].sampled == r.runs[i].sampled);
    CHECK(r2.runs[i].full == r.runs[i].full);
  }
  CHECK(r2.summary.held_out_nll == r.summary.held_out_nll);
  CHECK(p2.artefacts().rationales == art.rationales);

  // ---- a changed recommender setting reruns the recommenders only
  auto c3 = tiny_config(dir);
  c3.seeds = {3};
  tiny_pipeline p3(c3);
  thread_pool pool(2);  // the recommender runs go side by side
  p3.set_pool(&pool);
  const pipeline::pipeline_result r3 = p3.run(teacher, w.data, split, be);
  CHECK(r3.summary.stage_resumed.at("distil"));
  CHECK(r3.summary.stage_resumed.at("embed"));
  CHECK_FALSE(r3.summary.stage_resumed.at("recommend"));
  REQUIRE(r3.runs.size() == 2 * p3.arm_names().size());
  // side by side or one after another, a run's result depends on its seed only
  tiny_pipeline p4(c3);
  std::filesystem::remove_all(std::filesystem::path(dir) / "runs");
  const pipeline::pipeline_result r4 = p4.run(teacher, w.data, split, be);
  for (std::size_t i = 0; i < r3.runs.size(); ++i) {
    CHECK(r4.runs[i].arm == r3.runs[i].arm);
    CHECK(r4.runs[i].sampled == r3.runs[i].sampled);
    CHECK(r4.runs[i].full == r3.runs[i].full);
  }

  // ---- the report names every arm and the paired differences
  const std::string table = pipeline::results_table(r, {"SASRec", "GRU4Rec"}, p.arm_names());
  CHECK(table.find("SASRec +SLIM") != std::string::npos);
  CHECK(table.find("GRU4Rec text-matching") != std::string::npos);
  CHECK(table.find("text-matching − +text") != std::string::npos);
  CHECK(table.find("GRU4Rec B=0 (ctl)") != std::string::npos);
  CHECK(table.find("+SLIM − +text") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("slim_pipeline: a damaged artefact is an error naming the file, never a crash", "[pipeline]") {
  const synth::world w = synth::make_world(synth::world_config::tiny(4));
  const rec::sequence_split split = rec::leave_one_out(w.data);
  distill::oracle_teacher teacher(w, split);
  const std::string dir = fresh_dir("damaged");
  auto c = plumbing_config(dir);
  c.seeds = {1};
  {
    tiny_pipeline p(c);
    p.run(teacher, w.data, split, cpu{});
  }
  // truncate the rationales: the explain stage's key still matches, so the file is read and must be refused
  const auto path = (std::filesystem::path(dir) / "rationales.jsonl").string();
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  tiny_pipeline p(c);
  try {
    p.run(teacher, w.data, split, cpu{});
    FAIL("a truncated rationales.jsonl was accepted");
  } catch (const slim::error& e) {
    CHECK(std::string(e.what()).find("rationales.jsonl") != std::string::npos);
  }
  // an answer filed under another user (a hand-edited or mixed-up cache) is refused, not attributed
  const auto tpath = (std::filesystem::path(dir) / "teacher.jsonl").string();
  std::string text = io::read_file(tpath);
  const auto at = text.find("\"user\":");
  REQUIRE(at != std::string::npos);
  text.insert(at + 7, "1");  // user u becomes user 1u
  io::write_file_atomic(tpath, text);
  tiny_pipeline p2(c);
  try {
    p2.run(teacher, w.data, split, cpu{});
    FAIL("an answer for the wrong user was accepted");
  } catch (const slim::error& e) {
    CHECK(std::string(e.what()).find("teacher.jsonl") != std::string::npos);
    CHECK(std::string(e.what()).find("not the answer for user") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE(
    "slim_pipeline: a recorded teacher labels its users only, feeds the +teacher arm, and is asked again "
    "when its texts change",
    "[pipeline]") {
  const synth::world w = synth::make_world(synth::world_config::tiny(5));
  const rec::sequence_split split = rec::leave_one_out(w.data);
  // rationales "recorded" for every third user: the oracle's text, so the student has something to learn
  const synth::oracle oracle(w, split);
  std::vector<distill::recorded_rationale> records;
  for (index_t u = 0; u < w.data.num_users(); u += 3) records.push_back({u, oracle.rationale(u)});
  const distill::recorded_teacher teacher("oracle records", records, w.data.num_users());
  using recorded_pipeline = slim_pipeline<distill::recorded_teacher, student, pipeline::sasrec_backbone<cpu>>;
  const std::string dir = fresh_dir("recorded");
  auto c = plumbing_config(dir);
  c.seeds = {1};
  c.teacher_arm = true;
  c.teach_users = 100000;  // as many as the teacher can label
  recorded_pipeline p(c);
  distill::recorded_teacher t1 = teacher;
  const pipeline::pipeline_result r = p.run(t1, w.data, split, cpu{});
  const auto& art = p.artefacts();

  index_t expected = 0;  // recorded users the pipeline can evaluate (a training prefix and a test item)
  for (const auto& x : records)
    expected +=
        !split.train[static_cast<std::size_t>(x.user)].empty() && split.test[static_cast<std::size_t>(x.user)] != 0;
  CHECK(static_cast<index_t>(art.teach_users.size()) == expected);
  for (const index_t u : art.teach_users) CHECK(u % 3 == 0);

  const std::vector<std::string> arms = p.arm_names();
  REQUIRE(arms.back() == "+teacher");
  REQUIRE(r.runs.size() == arms.size());
  CHECK(r.runs.back().arm == "+teacher");
  // the +teacher embeddings: a row for every labelled user, zero for everyone else
  std::vector<bool> labelled(static_cast<std::size_t>(w.data.num_users()), false);
  for (const index_t u : art.teach_users) labelled[static_cast<std::size_t>(u)] = true;
  const auto& e = art.user_embeddings_teacher;
  REQUIRE(e.extent(0) == w.data.num_users());
  for (index_t u = 0; u < e.extent(0); ++u) {
    double norm = 0;
    for (index_t j = 0; j < e.extent(1); ++j) norm += static_cast<double>(e(u, j)) * e(u, j);
    if (labelled[static_cast<std::size_t>(u)])
      CHECK(norm > 0);
    else
      CHECK(norm == 0);
  }
  const std::string table = pipeline::results_table(r, {"SASRec"}, arms);
  CHECK(table.find("SASRec +teacher (SLIM-)") != std::string::npos);
  CHECK(table.find("+SLIM − +teacher") != std::string::npos);

  // the same records: every stage resumes; one text changed: the teacher is asked again
  recorded_pipeline p2(c);
  distill::recorded_teacher t2 = teacher;
  CHECK(p2.run(t2, w.data, split, cpu{}).summary.stage_resumed.at("teach"));
  records[0].text += " One more sentence.";
  distill::recorded_teacher t3("oracle records", records, w.data.num_users());
  recorded_pipeline p3(c);
  const pipeline::pipeline_result r3 = p3.run(t3, w.data, split, cpu{});
  CHECK_FALSE(r3.summary.stage_resumed.at("teach"));
  CHECK_FALSE(r3.summary.stage_resumed.at("distil"));

  // a teacher that can label none of the users is an error, not an empty distillation
  distill::recorded_teacher none("nobody", {}, w.data.num_users());
  recorded_pipeline p4(c);
  try {
    p4.run(none, w.data, split, cpu{});
    FAIL("a teacher with no records was accepted");
  } catch (const slim::error& x) {
    CHECK(std::string(x.what()).find("none of the users") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE(
    "slim_pipeline: an in-process model teacher writes the rationales, lends its tokenizer, and its logits "
    "enter distillation when kd_weight > 0",
    "[pipeline]") {
  const synth::world w = synth::make_world(synth::world_config::tiny(6));
  const rec::sequence_split split = rec::leave_one_out(w.data);
  auto c = plumbing_config(fresh_dir("model_kd0"));
  c.seeds = {1};
  // the teacher: a model twice the student's depth, trained here on (student prompt → oracle rationale)
  const text::trained_bpe bpe =
      distill::train_student_bpe(pipeline::student_tokenizer_corpus(w.data, c.prompt), c.vocab_size);
  const std::string tok_json = bpe.to_json();
  const text::byte_bpe tok = bpe.tokenizer();
  nn::decoder_config tc = c.student;
  tc.vocab_size = static_cast<index_t>(tok.vocab_size());
  tc.num_layers = 2;
  using teacher_lm = nn::decoder_lm<cpu, nn::no_adapter>;
  teacher_lm big(tc);
  big.reset_parameters(11);
  {
    const synth::oracle oracle(w, split);
    prompt::slim_cot cot(c.prompt);
    std::vector<train::lm_example> ex;
    for (index_t u = 0; u < w.data.num_users(); ++u) {
      if (split.train[static_cast<std::size_t>(u)].empty()) continue;
      const auto p =
          cot.student_prompt(tok, prompt::training_prefix(split.train[static_cast<std::size_t>(u)]),
                             [&](rec::item_id i) { return w.data.items[static_cast<std::size_t>(i)].title; });
      ex.push_back(distill::make_example(tok, p.ids, oracle.rationale(u)));
    }
    train::lm_train_config fc = c.distil;
    fc.epochs = 16;
    fc.max_steps = sanitized ? 2 : 0;  // plumbing only under the sanitizer
    fc.lr = 1e-2;
    train::fit_lm(cpu{}, big, std::span<const train::lm_example>(ex), fc);
  }
  using model_t = distill::model_teacher<teacher_lm, cpu>;
  static_assert(distill::LogitTeacher<model_t> && distill::FingerprintedTeacher<model_t>);
  using model_pipeline = slim_pipeline<model_t, student, pipeline::sasrec_backbone<cpu>>;
  const distill::model_teacher_options mo{.max_new_tokens = 24, .batch = 16};

  model_t t0(big, cpu{}, tok_json, mo);
  model_pipeline p0(c);
  const pipeline::pipeline_result r0 = p0.run(t0, w.data, split, cpu{});
  // the student shares the teacher's tokenizer, and the recorded answers are the model's own greedy text
  CHECK(io::read_file(c.run_dir + "/tokenizer.json") == tok_json);
  const auto& art = p0.artefacts();
  REQUIRE(!art.teach_users.empty());
  const std::vector<distill::teacher_request> again = {{art.teach_users[0], "", art.teacher_prompts[0]}};
  std::string first_text;
  io::read_jsonl(c.run_dir + "/teacher.jsonl", [&](const io::json& r, std::size_t line) {
    if (line == 1) first_text = r.at("text").get<std::string>();
  });
  if (!sanitized) CHECK(!first_text.empty());
  CHECK(t0.teach(again)[0].text == first_text);
  // what the model teacher writes is an oracle-style rationale: it learned the step format
  index_t stepped = 0;
  for (const auto& r : art.teacher_rationales) stepped += r.rfind("Step 1:", 0) == 0;
  INFO("first teacher rationale: " << art.teacher_rationales[0] << "\nprompt: " << art.teacher_prompts[0]);
  if (!sanitized) CHECK(stepped * 2 > static_cast<index_t>(art.teacher_rationales.size()));
  CHECK(t0.logit_batches() == 0);  // kd_weight = 0: the logits are never asked for

  auto c1 = c;
  c1.run_dir = fresh_dir("model_kd1");
  c1.distil.kd_weight = 0.5;
  c1.distil.kd_temperature = 2;
  model_t t1(big, cpu{}, tok_json, mo);
  model_pipeline p1(c1);
  const pipeline::pipeline_result r1 = p1.run(t1, w.data, split, cpu{});
  CHECK(t1.logit_batches() > 0);
  // same teacher text, same seeds: only the KD term differs, and it changes the distilled student
  CHECK(p1.artefacts().teacher_rationales == art.teacher_rationales);
  CHECK(io::read_file(c1.run_dir + "/student_lora.safetensors") !=
        io::read_file(c.run_dir + "/student_lora.safetensors"));
  CHECK(r1.summary.held_out_nll != r0.summary.held_out_nll);

  // KD asked of a teacher without logits is a configuration error
  {
    distill::oracle_teacher oracle(w, split);
    auto c2 = c1;
    c2.run_dir = fresh_dir("model_kd2");
    tiny_pipeline p2(c2);
    try {
      p2.run(oracle, w.data, split, cpu{});
      FAIL("kd_weight with an oracle teacher was accepted");
    } catch (const slim::error& e) {
      CHECK(std::string(e.what()).find("kd_weight") != std::string::npos);
    }
    std::filesystem::remove_all(c2.run_dir);
  }
  // a tokenizer whose vocabulary is not the model's is refused at once
  const text::trained_bpe other =
      distill::train_student_bpe(pipeline::student_tokenizer_corpus(w.data, c.prompt), c.vocab_size + 50);
  REQUIRE(other.tokenizer().vocab_size() != tok.vocab_size());
  CHECK_THROWS_AS(model_t(big, cpu{}, other.to_json(), mo), slim::error);
  std::filesystem::remove_all(c.run_dir);
  std::filesystem::remove_all(c1.run_dir);
}

TEST_CASE(
    "slim_pipeline: a sentence encoder in place of the student embeds every text; changing it reruns the "
    "embed stage only",
    "[pipeline]") {
  const synth::world w = synth::make_world(synth::world_config::tiny(7));
  const rec::sequence_split split = rec::leave_one_out(w.data);
  distill::oracle_teacher teacher(w, split);
  // a random tiny BERT with a vocabulary of the world's title words (what the encoder is matters not here: the
  // test is that the pipeline embeds with it, not how well)
  std::string vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n";
  std::set<std::string> words;
  for (index_t i = 1; i <= w.data.num_items; ++i) {
    std::string t = w.data.items[static_cast<std::size_t>(i)].text, word;
    for (const char ch : t + " ") {
      if (std::isalpha(static_cast<unsigned char>(ch))) {
        word += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      } else {
        if (!word.empty()) words.insert(word);
        word.clear();
      }
    }
  }
  for (const auto& x : words) vocab += x + "\n";
  const text::wordpiece wp = text::wordpiece::from_vocab_text(vocab, "test vocab");
  const nn::encoder_config ec{.vocab_size = static_cast<index_t>(wp.vocab_size()),
                              .hidden_size = 12,
                              .num_hidden_layers = 1,
                              .num_attention_heads = 3,
                              .intermediate_size = 20,
                              .max_position_embeddings = 64,
                              .type_vocab_size = 2,
                              .layer_norm_eps = 1e-5};
  nn::encoder<cpu> model(ec);
  philox_stream rng(42);
  model.visit_parameters([&](nn::parameter<float>& p) {
    for (index_t i = 0; i < p.value.size(); ++i) p.value.data()[i] = static_cast<float>(rng.uniform() - 0.5);
  });
  using enc_t = nn::sentence_encoder<cpu, float>;
  enc_t enc(std::move(model), wp, nn::sentence_settings{.max_seq_length = 64, .options = {.normalize = true}});

  auto c = plumbing_config(fresh_dir("encoder"));
  c.seeds = {1};
  tiny_pipeline p(c);
  p.set_text_encoder(&enc, "random tiny BERT 42");
  p.run(teacher, w.data, split, cpu{});
  const auto& art = p.artefacts();
  REQUIRE(art.item_embeddings.extent(1) == 12);
  REQUIRE(art.user_embeddings.extent(1) == 12);
  // the item embeddings are the encoder's, standardised as the student's would be
  std::vector<std::string> items(static_cast<std::size_t>(w.data.num_items + 1));
  for (index_t i = 1; i <= w.data.num_items; ++i)
    items[static_cast<std::size_t>(i)] = w.data.items[static_cast<std::size_t>(i)].text;
  tensor<float, 2> raw({static_cast<index_t>(items.size()), 12});
  enc.embed(cpu{}, items, matrix_view<float>(raw.data(), {raw.extent(0), 12}));
  const tensor<float, 2> expected = pipeline::detail::standardize(raw, 1);
  for (index_t i = 0; i < expected.extent(0); ++i)
    for (index_t j = 0; j < 12; ++j) CHECK(art.item_embeddings(i, j) == Approx(expected(i, j)).margin(1e-6));

  // another encoder (here: another name) reruns the embedding and what follows, nothing before it
  tiny_pipeline p2(c);
  p2.set_text_encoder(&enc, "random tiny BERT 42, renamed");
  const pipeline::pipeline_result r2 = p2.run(teacher, w.data, split, cpu{});
  CHECK(r2.summary.stage_resumed.at("distil"));
  CHECK(r2.summary.stage_resumed.at("explain"));
  CHECK_FALSE(r2.summary.stage_resumed.at("embed"));
  CHECK_FALSE(r2.summary.stage_resumed.at("recommend"));
  std::filesystem::remove_all(c.run_dir);
}
