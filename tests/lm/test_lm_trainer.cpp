// train::fit_lm and its data (train/lm_data.hpp, train/lm_trainer.hpp): JSONL reading with ids or text and its
// errors, truncation and batches against hand-made cases, the epoch shuffle, the weight-decay groups, the step loss
// against an independent per-example computation (NLL and KD, full and top-k), gradient accumulation equal to one
// big batch, interrupted-and-resumed runs equal to uninterrupted ones bit for bit (full, LoRA), refused and damaged
// checkpoints, and the loss falling on a small copy task.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include <xsimd/xsimd.hpp>

#include "slim/backend/scalar.hpp"
#include "slim/backend/simd.hpp"
#include "slim/io/safetensors.hpp"
#include "slim/nn/decoder_lm.hpp"
#include "slim/nn/lora.hpp"
#include "slim/text/tokenizer.hpp"
#include "slim/train/lm_data.hpp"
#include "slim/train/lm_trainer.hpp"
#include "support/check.hpp"

namespace slim::testing::lm_trainer_tests {

using sb = backend::scalar;
using simd_b = backend::simd<xsimd::sse2>;
using qv_lora = nn::lora<nn::q_proj, nn::v_proj>;

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("slim_lm_trainer_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = (path / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string sub(const std::string& name) const { return (path / name).string(); }
};

/// The message of the slim::error `f` throws ("" when it throws none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const slim::error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

nn::decoder_config tiny_config(index_t vocab = 12) {
  nn::decoder_config c;
  c.vocab_size = vocab;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_layers = 2;
  c.num_heads = 2;
  c.num_kv_heads = 1;
  c.max_positions = 64;
  c.rms_norm_eps = 1e-5;
  c.rope_theta = 100;
  c.attention_bias = true;
  return c;
}

std::vector<train::lm_example> random_examples(index_t n, index_t vocab, std::uint64_t seed) {
  philox_stream rng(seed);
  std::vector<train::lm_example> ex(static_cast<std::size_t>(n));
  for (auto& e : ex) {
    const auto p = rng.below(5), c = 1 + rng.below(4);
    for (std::uint32_t i = 0; i < p; ++i)
      e.prompt.push_back(static_cast<std::int32_t>(rng.below(static_cast<std::uint32_t>(vocab))));
    for (std::uint32_t i = 0; i < c; ++i)
      e.completion.push_back(static_cast<std::int32_t>(rng.below(static_cast<std::uint32_t>(vocab))));
  }
  return ex;
}

template <class Model>
std::vector<std::vector<double>> values_of(Model& m) {
  std::vector<std::vector<double>> v;
  m.visit_parameters([&](auto& p) { v.emplace_back(p.value.begin(), p.value.end()); });
  return v;
}

/// True when every parameter of a and b has the same bits.
template <class Model>
bool bit_identical(Model& a, Model& b) {
  std::vector<const void*> pa;
  std::vector<std::size_t> sa;
  a.visit_parameters([&](auto& p) {
    pa.push_back(p.value.data());
    sa.push_back(static_cast<std::size_t>(p.size()) * sizeof(*p.value.data()));
  });
  std::size_t i = 0;
  bool same = true;
  b.visit_parameters([&](auto& p) {
    same = same && i < pa.size() && sa[i] == static_cast<std::size_t>(p.size()) * sizeof(*p.value.data()) &&
           std::memcmp(pa[i], p.value.data(), sa[i]) == 0;
    ++i;
  });
  return same && i == pa.size();
}

// ---------------------------------------------------------------------------------------------------------------
// data

/// A character tokenizer for the text overload: 'a'.. → 3.., BOS 1, EOS 2.
struct char_tokenizer {
  std::vector<text::token_id> encode(std::string_view s, text::encode_options = {}) const {
    std::vector<text::token_id> out;
    for (char c : s) out.push_back(static_cast<text::token_id>(c - 'a' + 3));
    return out;
  }
  std::string decode(std::span<const text::token_id> ids, text::decode_options = {}) const {
    std::string s;
    for (auto id : ids) s += static_cast<char>('a' + id - 3);
    return s;
  }
  std::string_view decode_piece(text::token_id) const { return ""; }
  std::size_t vocab_size() const { return 29; }
  std::optional<text::token_id> token_to_id(std::string_view) const { return std::nullopt; }
  std::string_view id_to_token(text::token_id) const { return ""; }
  bool is_special(text::token_id id) const { return id < 3; }
  std::optional<text::token_id> bos_id() const { return 1; }
  std::optional<text::token_id> eos_id() const { return 2; }
};
static_assert(text::Tokenizer<char_tokenizer>);

TEST_CASE("read_lm_jsonl: ids per line; bad lines name the file, the line and the field", "[lm_trainer][data]") {
  temp_dir d;
  const auto good = d.write("good.jsonl",
                            "{\"prompt\": [5, 17], \"completion\": [3], \"extra\": 1}\n\n"
                            "{\"prompt\": [], \"completion\": [0, 2147483647]}\n");
  const auto ex = train::read_lm_jsonl(good);
  REQUIRE(ex.size() == 2);
  CHECK(ex[0].prompt == std::vector<std::int32_t>{5, 17});
  CHECK(ex[0].completion == std::vector<std::int32_t>{3});
  CHECK(ex[1].prompt.empty());
  CHECK(ex[1].completion == std::vector<std::int32_t>{0, 2147483647});

  struct bad_case {
    const char* text;
    const char* line;
    const char* field;
  };
  for (const bad_case& c :
       {bad_case{"{\"prompt\": [1]}\n", "line 1", "completion"},
        bad_case{"{\"prompt\": [1], \"completion\": [2]}\n{\"prompt\": [1, \"a\"], \"completion\": [2]}\n", "line 2",
                 "prompt[1]"},
        bad_case{"{\"prompt\": [1], \"completion\": [2, -4]}\n", "line 1", "completion[1]"},
        bad_case{"{\"prompt\": [1], \"completion\": [2.5]}\n", "line 1", "completion[0]"},
        bad_case{"{\"prompt\": [1], \"completion\": [2147483648]}\n", "line 1", "completion[0]"},
        bad_case{"{\"prompt\": [1], \"completion\": []}\n", "line 1", "completion"},
        bad_case{"{\"prompt\": 3, \"completion\": [1]}\n", "line 1", "prompt"},
        bad_case{"{\"prompt\": [1], \"completion\": [2]}\n[1, 2]\n", "line 2", ""},
        bad_case{"{\"prompt\": [1], \"completion\": [2]}\n{\"prompt\": [1\n", "line 2", ""}}) {
    const auto p = d.write("bad.jsonl", c.text);
    const std::string msg = error_of([&] { train::read_lm_jsonl(p); });
    INFO(c.text << " -> " << msg);
    CHECK(has(msg, p));
    CHECK(has(msg, c.line));
    CHECK(has(msg, c.field));
  }
}

TEST_CASE("read_lm_jsonl with a tokenizer: text gets BOS/EOS, id arrays are taken as they are", "[lm_trainer][data]") {
  temp_dir d;
  const auto p = d.write("t.jsonl",
                         "{\"prompt\": \"ab\", \"completion\": \"c\"}\n"
                         "{\"prompt\": [7, 8], \"completion\": \"dd\"}\n"
                         "{\"prompt\": \"\", \"completion\": [9]}\n");
  const char_tokenizer tok;
  const auto ex = train::read_lm_jsonl(p, tok);
  REQUIRE(ex.size() == 3);
  CHECK(ex[0].prompt == std::vector<std::int32_t>{1, 3, 4});
  CHECK(ex[0].completion == std::vector<std::int32_t>{5, 2});
  CHECK(ex[1].prompt == std::vector<std::int32_t>{7, 8});
  CHECK(ex[1].completion == std::vector<std::int32_t>{6, 6, 2});
  CHECK(ex[2].prompt == std::vector<std::int32_t>{1});
  CHECK(ex[2].completion == std::vector<std::int32_t>{9});
  const auto plain = train::read_lm_jsonl(p, tok, {.add_bos = false, .add_eos = false});
  CHECK(plain[0].prompt == std::vector<std::int32_t>{3, 4});
  CHECK(plain[0].completion == std::vector<std::int32_t>{5});
  const auto bad = d.write("b.jsonl", "{\"prompt\": \"a\", \"completion\": 4}\n");
  const std::string msg = error_of([&] { train::read_lm_jsonl(bad, tok); });
  CHECK(has(msg, bad));
  CHECK(has(msg, "line 1, field completion"));
}

TEST_CASE("truncation keeps the completion's start; batches are right-padded with shifted completion targets",
          "[lm_trainer][data]") {
  const std::vector<train::lm_example> ex{
      {{1, 2, 3}, {4, 5}},     // 5 tokens > 4: the prompt loses its first token
      {{}, {6, 7, 8, 9}},      // exactly 4
      {{1}, {2, 3, 4, 5, 6}},  // the completion alone is too long: no prompt, completion cut at its end
      {{1}, {2}},              // short: padded
  };
  auto s0 = train::truncate_example(ex[0], 4);
  CHECK(s0.ids == std::vector<std::int32_t>{2, 3, 4, 5});
  CHECK(s0.prompt_tokens == 2);
  auto s2 = train::truncate_example(ex[2], 4);
  CHECK(s2.ids == std::vector<std::int32_t>{2, 3, 4, 5});
  CHECK(s2.prompt_tokens == 0);
  auto s3 = train::truncate_example(ex[3], 4);
  CHECK(s3.ids == std::vector<std::int32_t>{1, 2});

  const std::vector<index_t> rows{0, 3};
  const train::lm_batch b = train::make_lm_batch(ex, rows, 4, /*pad_id=*/11);
  REQUIRE(b.rows() == 2);
  REQUIRE(b.columns() == 4);
  const std::int32_t ids[2][4] = {{2, 3, 4, 5}, {1, 2, 11, 11}};
  const std::uint8_t mask[2][4] = {{0, 0, 1, 1}, {0, 1, 0, 0}};
  for (index_t i = 0; i < 2; ++i)
    for (index_t t = 0; t < 4; ++t) {
      CHECK(b.ids(i, t) == ids[i][t]);
      CHECK(b.loss_mask(i, t) == mask[i][t]);
    }
  const std::int32_t ig = train::ignore_target;
  // row 0: column 1 predicts 4, column 2 predicts 5; row 1: column 0 predicts 2.
  CHECK(b.targets == std::vector<std::int32_t>{ig, 4, 5, ig, 2, ig, ig, ig});
  CHECK(b.counted == 3);
  CHECK(b.tokens == 6);
  CHECK(b.lengths == std::vector<index_t>{4, 2});
}

TEST_CASE("epoch order: a permutation fixed by (seed, epoch)", "[lm_trainer][data]") {
  const auto a = train::lm_epoch_order(50, 7, 0);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (index_t i = 0; i < 50; ++i) CHECK(sorted[static_cast<std::size_t>(i)] == i);
  CHECK(a == train::lm_epoch_order(50, 7, 0));
  CHECK(a != train::lm_epoch_order(50, 7, 1));
  CHECK(a != train::lm_epoch_order(50, 8, 0));
  std::vector<index_t> identity(50);
  for (index_t i = 0; i < 50; ++i) identity[static_cast<std::size_t>(i)] = i;
  CHECK(a != identity);
}

TEST_CASE("AdamW groups: decay on everything but biases and norm weights", "[lm_trainer][optim]") {
  nn::decoder_lm<sb> m(tiny_config());
  train::lm_train_config c;
  c.weight_decay = 0.25;
  auto opt = train::make_lm_optimizer<sb, float>(m, c);
  index_t decayed = 0, plain = 0;
  m.visit_parameters([&](nn::parameter<float>& p) {
    const auto* pc = opt.config_of(p);
    REQUIRE(pc != nullptr);
    const bool exempt = has(p.name, "norm") || has(p.name, ".bias");
    INFO(p.name);
    CHECK(pc->weight_decay == (exempt ? 0.0f : 0.25f));
    (exempt ? plain : decayed) += 1;
  });
  CHECK(decayed > 0);
  CHECK(plain > 0);
}

// ---------------------------------------------------------------------------------------------------------------
// the step loss, independently

/// Σ over completion targets of −log softmax(z)[target], and Σ KL(p_T ‖ p_S) at τ (full or top-k teacher), for one
/// example run alone through `student` and `teacher` (double), and the number of targets.
struct example_terms {
  double nll = 0, kl = 0;
  index_t count = 0;
};
template <class Model>
example_terms terms_of(Model& student, Model& teacher, const train::lm_example& e, index_t max_len, double tau,
                       index_t top_k) {
  const auto s = train::truncate_example(e, max_len);
  const auto len = static_cast<index_t>(s.ids.size());
  const index_t v = student.config().vocab_size;
  tensor<std::int32_t, 2> ids({1, len});
  for (index_t t = 0; t < len; ++t) ids(0, t) = s.ids[static_cast<std::size_t>(t)];
  tensor<double, 2> zs({len, v}), zt({len, v});
  student.forward(sb{}, ids.view(), zs.view());
  teacher.forward(sb{}, ids.view(), zt.view());
  example_terms out;
  for (index_t t = 0; t + 1 < len; ++t) {
    if (t + 1 < s.prompt_tokens) continue;
    const std::int32_t target = s.ids[static_cast<std::size_t>(t + 1)];
    double mx = -1e300;
    for (index_t j = 0; j < v; ++j) mx = std::max(mx, zs(t, j));
    double se = 0;
    for (index_t j = 0; j < v; ++j) se += std::exp(zs(t, j) - mx);
    out.nll += mx + std::log(se) - zs(t, target);
    ++out.count;
    // KL at temperature tau: p_S over the vocabulary, p_T over the vocabulary or the teacher's top-k ids.
    std::vector<double> ls(static_cast<std::size_t>(v)), pt(static_cast<std::size_t>(v), 0.0);
    double mxs = -1e300;
    for (index_t j = 0; j < v; ++j) mxs = std::max(mxs, zs(t, j) / tau);
    double ses = 0;
    for (index_t j = 0; j < v; ++j) ses += std::exp(zs(t, j) / tau - mxs);
    for (index_t j = 0; j < v; ++j) ls[static_cast<std::size_t>(j)] = zs(t, j) / tau - mxs - std::log(ses);
    std::vector<index_t> keep(static_cast<std::size_t>(v));
    for (index_t j = 0; j < v; ++j) keep[static_cast<std::size_t>(j)] = j;
    std::sort(keep.begin(), keep.end(), [&](index_t a, index_t b) { return zt(t, a) > zt(t, b); });
    keep.resize(static_cast<std::size_t>(top_k > 0 ? top_k : v));
    double se_t = 0;
    for (index_t j : keep) se_t += std::exp(zt(t, j) / tau);
    double kl = 0;
    for (index_t j : keep) {
      const double p = std::exp(zt(t, j) / tau) / se_t;
      kl += p * (std::log(p) - ls[static_cast<std::size_t>(j)]);
    }
    out.kl += kl;
  }
  return out;
}

TEST_CASE("the step loss is the mean over every counted token of the accumulated batch (NLL + KD, full and top-k)",
          "[lm_trainer][loss]") {
  using model_t = nn::decoder_lm<sb, nn::no_adapter, double>;
  const auto ex = random_examples(9, 12, 3);
  model_t teacher(tiny_config());
  teacher.reset_parameters(99, 0.3);
  for (const index_t top_k : {index_t(0), index_t(3)}) {
    for (const double kd_weight : {0.0, 0.4}) {
      model_t student(tiny_config());
      student.reset_parameters(5, 0.3);
      model_t probe(tiny_config());
      probe.reset_parameters(5, 0.3);
      train::lm_train_config c;
      c.batch_size = 2;
      c.grad_accum = 3;  // step 1 = the first 6 examples of the shuffle, in 3 micro-batches
      c.max_len = 6;
      c.max_steps = 1;
      c.seed = 11;
      c.kd_weight = kd_weight;
      c.kd_temperature = 2.0;
      c.kd_top_k = top_k;
      const train::lm_teacher<double> tfn = [&](tensor_view<const std::int32_t, 2> ids, matrix_view<double> z) {
        teacher.forward(sb{}, ids, z);
      };
      const auto rep = train::fit_lm(sb{}, student, ex, c, train::no_lm_progress{}, tfn);
      REQUIRE(rep.step_loss.size() == 1);
      const auto order = train::lm_epoch_order(9, 11, 0);
      double nll = 0, kl = 0;
      index_t count = 0;
      for (std::size_t i = 0; i < 6; ++i) {
        const auto t = terms_of(probe, teacher, ex[static_cast<std::size_t>(order[i])], 6, 2.0, top_k);
        nll += t.nll;
        kl += t.kl;
        count += t.count;
      }
      const double expected =
          (1 - kd_weight) * nll / static_cast<double>(count) + kd_weight * 4.0 * kl / static_cast<double>(count);
      INFO("top_k " << top_k << " kd_weight " << kd_weight);
      CHECK(std::abs(rep.step_loss[0] - expected) <= 1e-12 * std::abs(expected));
    }
  }
}

TEST_CASE("gradient accumulation equals one big batch (double, scalar)", "[lm_trainer][accum]") {
  using model_t = nn::decoder_lm<sb, nn::no_adapter, double>;
  const auto ex = random_examples(11, 12, 4);  // 11: the last micro-batch of an epoch is short
  auto run = [&](index_t bs, index_t ga, std::vector<std::vector<double>>& params) {
    model_t m(tiny_config());
    m.reset_parameters(2, 0.2);
    train::lm_train_config c;
    c.batch_size = bs;
    c.grad_accum = ga;
    c.epochs = 3;
    c.max_len = 7;
    c.lr = 5e-3;
    c.weight_decay = 0.1;
    c.warmup_steps = 1;
    c.clip_norm = 0.3;
    c.seed = 5;
    const auto rep = train::fit_lm(sb{}, m, ex, c, std::function<void(const train::lm_step_event&)>{});  // empty: none
    params = values_of(m);
    return rep.step_loss;
  };
  std::vector<std::vector<double>> p_big, p_acc, p_acc2;
  const auto big = run(6, 1, p_big);
  const auto acc = run(2, 3, p_acc);
  const auto acc2 = run(3, 2, p_acc2);
  REQUIRE(big.size() == 6);
  REQUIRE(acc.size() == big.size());
  REQUIRE(acc2.size() == big.size());
  for (std::size_t i = 0; i < big.size(); ++i) {
    CHECK(std::abs(acc[i] - big[i]) <= 1e-12 * big[i]);
    CHECK(std::abs(acc2[i] - big[i]) <= 1e-12 * big[i]);
  }
  double worst = 0;
  for (std::size_t i = 0; i < p_big.size(); ++i)
    for (std::size_t j = 0; j < p_big[i].size(); ++j)
      worst = std::max({worst, std::abs(p_acc[i][j] - p_big[i][j]), std::abs(p_acc2[i][j] - p_big[i][j])});
  CHECK(worst < 1e-11);
  CHECK(big.back() < big.front());
}

TEST_CASE("fit_lm refuses ids outside the vocabulary, KD without a teacher, sequences past the positions",
          "[lm_trainer][errors]") {
  nn::decoder_lm<sb> m(tiny_config());
  auto ex = random_examples(4, 12, 1);
  train::lm_train_config c;
  c.max_len = 8;
  ex[2].completion.push_back(12);
  std::string msg = error_of([&] { train::fit_lm(sb{}, m, ex, c); });
  CHECK(has(msg, "example 2 completion"));
  CHECK(has(msg, "12"));
  ex[2].completion.pop_back();
  c.kd_weight = 0.5;
  CHECK(has(error_of([&] { train::fit_lm(sb{}, m, ex, c); }), "teacher"));
  c.kd_weight = 0;
  c.max_len = 65;
  CHECK(has(error_of([&] { train::fit_lm(sb{}, m, ex, c); }), "max_len"));
  CHECK(error_of([&] { train::fit_lm(sb{}, m, std::vector<train::lm_example>{}, c); }) != "");
}

// ---------------------------------------------------------------------------------------------------------------
// checkpoint and resume

struct interrupted {};

train::lm_train_config resume_config(const std::string& dir) {
  train::lm_train_config c;
  c.batch_size = 3;
  c.grad_accum = 2;  // 10 examples: 4 micro-batches, 2 steps per epoch
  c.epochs = 3;
  c.max_len = 8;
  c.lr = 1e-2;
  c.weight_decay = 0.1;
  c.warmup_steps = 2;
  c.min_lr_ratio = 0.1;
  c.clip_norm = 0.5;
  c.seed = 21;
  c.checkpoint_dir = dir;
  c.checkpoint_every = 2;
  return c;
}

template <class Adapter>
void check_resume(const nn::lora_config& lc) {
  using model_t = nn::decoder_lm<sb, Adapter>;
  const auto ex = random_examples(10, 12, 8);
  temp_dir d;

  model_t whole(tiny_config(), lc);
  std::vector<train::lm_step_event> events;
  const auto full =
      train::fit_lm(sb{}, whole, ex, resume_config(""), [&](const train::lm_step_event& e) { events.push_back(e); });
  REQUIRE(full.step_loss.size() == 6);
  REQUIRE(events.size() == 6);
  CHECK(events.back().step == 6);
  CHECK(events.back().total_steps == 6);
  CHECK(events[0].lr == 0.0);  // warmup starts at 0, as transformers' schedule does
  CHECK(events[2].epoch == 1);

  for (const index_t stop : {index_t(3), index_t(4)}) {  // 3: between checkpoints (step 3 is redone); 4: on one
    const std::string dir = d.sub("run" + std::to_string(stop));
    model_t first(tiny_config(), lc);
    CHECK_THROWS_AS(train::fit_lm(sb{}, first, ex, resume_config(dir),
                                  [&](const train::lm_step_event& e) {
                                    if (e.step == stop) throw interrupted{};
                                  }),
                    interrupted);
    model_t second(tiny_config(), lc);  // a fresh process: the initial weights again
    const auto resumed = train::fit_lm(sb{}, second, ex, resume_config(dir));
    INFO("interrupted after step " << stop);
    CHECK(resumed.resumed_from == (stop / 2) * 2);
    CHECK(resumed.steps == 6);
    REQUIRE(resumed.step_loss.size() == full.step_loss.size());
    for (std::size_t i = 0; i < full.step_loss.size(); ++i) CHECK(resumed.step_loss[i] == full.step_loss[i]);
    CHECK(bit_identical(whole, second));

    // only trainable parameters (and their moments) are saved; one state file is left
    std::vector<std::string> states;
    for (const auto& f : std::filesystem::directory_iterator(dir))
      if (train::detail::is_lm_state_name(f.path().filename().string())) states.push_back(f.path().string());
    REQUIRE(states.size() == 1);
    const io::safetensors_file st(states[0]);
    index_t trainable = 0;
    second.visit_parameters([&](auto& p) {
      trainable += p.trainable ? 1 : 0;
      CHECK(st.contains(p.name) == p.trainable);
    });
    CHECK(static_cast<index_t>(st.size()) == 3 * trainable + 1);

    // a finished run resumes to its end at once
    model_t third(tiny_config(), lc);
    const auto again = train::fit_lm(sb{}, third, ex, resume_config(dir));
    CHECK(again.resumed_from == 6);
    CHECK(again.step_loss == full.step_loss);
    CHECK(bit_identical(whole, third));
  }
}

TEST_CASE("resume: an interrupted full fine-tune ends bit-identical to an uninterrupted one (scalar)",
          "[lm_trainer][resume]") {
  check_resume<nn::no_adapter>({});
}

TEST_CASE("resume: the same with LoRA on q and v (dropout on), adapters only in the checkpoint",
          "[lm_trainer][resume]") {
  check_resume<qv_lora>({.rank = 2, .alpha = 4, .dropout = 0.2, .use_rslora = false, .seed = 3});
}

TEST_CASE("resume: other settings, data, shapes or base weights, and damaged files, are refused naming the file",
          "[lm_trainer][resume]") {
  using model_t = nn::decoder_lm<sb, qv_lora>;
  const nn::lora_config lc{.rank = 2, .alpha = 4, .dropout = 0, .use_rslora = false, .seed = 3};
  const auto ex = random_examples(10, 12, 8);
  temp_dir d;
  const std::string dir = d.sub("ck");
  {
    model_t m(tiny_config(), lc);
    auto c = resume_config(dir);
    CHECK_THROWS_AS(train::fit_lm(sb{}, m, ex, c,
                                  [](const train::lm_step_event& e) {
                                    if (e.step == 2) throw interrupted{};
                                  }),
                    interrupted);
  }
  const std::string json = (std::filesystem::path(dir) / "lm_checkpoint.json").string();
  auto attempt =
      [&](const std::function<void(model_t&, train::lm_train_config&, std::vector<train::lm_example>&)>& change) {
        model_t m(tiny_config(), lc);
        auto c = resume_config(dir);
        auto data = ex;
        change(m, c, data);
        return error_of([&] { train::fit_lm(sb{}, m, data, c); });
      };
  std::string msg = attempt([](model_t&, train::lm_train_config& c, auto&) { c.lr = 2e-2; });
  CHECK(has(msg, json));
  CHECK(has(msg, "settings.lr"));
  msg = attempt([](model_t&, auto&, std::vector<train::lm_example>& data) { data[3].completion[0] ^= 1; });
  CHECK(has(msg, json));
  CHECK(has(msg, "data.hash"));
  msg = attempt([](model_t& m, auto&, auto&) { m.reset_parameters(1); });  // another base under the adapters
  CHECK(has(msg, json));
  CHECK(has(msg, "model.frozen_hash"));
  {
    nn::lora_config other = lc;
    other.rank = 3;
    model_t m(tiny_config(), other);
    msg = error_of([&] { train::fit_lm(sb{}, m, ex, resume_config(dir)); });
    CHECK(has(msg, json));
    CHECK(has(msg, "model.parameters"));
  }
  {
    nn::decoder_lm<sb> m(tiny_config());  // full fine-tuning from a LoRA checkpoint
    msg = error_of([&] { train::fit_lm(sb{}, m, ex, resume_config(dir)); });
    CHECK(has(msg, json));
    CHECK(has(msg, "model"));
  }
  // a damaged state file
  const std::string state = (std::filesystem::path(dir) / train::detail::lm_state_name(2)).string();
  REQUIRE(std::filesystem::exists(state));
  const std::string bytes = io::read_file(state);
  {
    std::ofstream(state, std::ios::binary) << bytes.substr(0, bytes.size() - 5);
    msg = attempt([](auto&, auto&, auto&) {});
    CHECK(has(msg, state));
  }
  {
    std::filesystem::remove(state);
    msg = attempt([](auto&, auto&, auto&) {});
    CHECK(has(msg, state));
  }
  // a state file from another step of the same run: the pair does not belong together
  {
    std::ofstream(state, std::ios::binary) << bytes;
    std::string j = io::read_file(json);
    const auto at = j.find("\"step\": 2");
    REQUIRE(at != std::string::npos);
    j.replace(at, 9, "\"step\": 1");
    std::ofstream(json, std::ios::binary) << j;
    msg = attempt([](auto&, auto&, auto&) {});
    CHECK(has(msg, json));
  }
  {
    std::ofstream(json, std::ios::binary) << "{\"format\": ";
    msg = attempt([](auto&, auto&, auto&) {});
    CHECK(has(msg, json));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// learning

TEST_CASE("the loss falls on a copy task (simd, full fine-tuning, 100 steps)", "[lm_trainer][learn]") {
  nn::decoder_config cfg;
  cfg.vocab_size = 12;
  cfg.hidden_size = 32;
  cfg.intermediate_size = 64;
  cfg.num_layers = 2;
  cfg.num_heads = 4;
  cfg.num_kv_heads = 2;
  cfg.max_positions = 32;
  nn::decoder_lm<simd_b> m(cfg);
  std::vector<train::lm_example> ex(64);
  philox_stream rng(17);
  for (auto& e : ex) {
    e.prompt.push_back(1);  // BOS
    for (int i = 0; i < 4; ++i) e.prompt.push_back(3 + static_cast<std::int32_t>(rng.below(9)));
    e.prompt.push_back(2);  // separator
    e.completion.assign(e.prompt.begin() + 1, e.prompt.begin() + 5);
  }
  train::lm_train_config c;
  c.batch_size = 16;
  c.max_steps = 100;
  c.lr = 1e-2;
  c.warmup_steps = 10;
  c.max_len = 16;
  c.seed = 1;
  const auto rep = train::fit_lm(simd_b{}, m, ex, c);
  REQUIRE(rep.step_loss.size() == 100);
  double last = 0;
  for (std::size_t i = 90; i < 100; ++i) last += rep.step_loss[i] / 10;
  INFO("first " << rep.step_loss[0] << " last-10 mean " << last);
  CHECK(rep.step_loss[0] > 2.0);  // about ln 12 at the start
  CHECK(last < 0.25 * rep.step_loss[0]);
  CHECK(rep.tokens > 0);
}

}  // namespace slim::testing::lm_trainer_tests
