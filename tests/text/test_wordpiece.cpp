// WordPiece (BERT) against HF tokenizers 0.23.3 (tools/text_fixtures/make_wordpiece_reference.py): ids identical
// on every corpus string with a WordPiece vocabulary HF trained (lower-cased + accent-stripped, and cased),
// on edge strings under every normaliser option, and with an HF tokenizer.json that sets every option away
// from its default; decode equal to HF's WordPiece decoder; HF's BERT character classes on every code point;
// vocab.txt / tokenizer.json errors naming the file and the line or field; the invalid-UTF-8 policy; and
// linear time on 1 MB inputs.
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "slim/core/philox.hpp"
#include "slim/text/wordpiece.hpp"
#include "text_test_support.hpp"

using slim::text::token_id;
using slim::text::wordpiece;
using slim::text::wordpiece_options;
namespace bert = slim::text::bert;
namespace u = slim::text::unicode;
namespace tt = slim::testing::text;

namespace {

const std::string& vocab_path() {
  static const std::string p = tt::fixture("wordpiece_vocab.txt");
  return p;
}

wordpiece_options lower_options(bool lowercase) {
  wordpiece_options o;
  o.lowercase = lowercase;
  return o;
}

const wordpiece& uncased() {
  static const wordpiece t = wordpiece::from_vocab_file(vocab_path(), lower_options(true));
  return t;
}
const wordpiece& cased() {
  static const wordpiece t = wordpiece::from_vocab_file(vocab_path(), lower_options(false));
  return t;
}
const wordpiece& small() {
  static const wordpiece t = wordpiece::from_file(tt::fixture("wordpiece_small.json"));
  return t;
}

struct reference_data {
  tt::json header;
  std::vector<tt::json> corpus_rows, edge_rows;
};

const reference_data& reference() {
  static const reference_data ref = [] {
    reference_data r;
    for (auto& row : tt::read_jsonl(tt::fixture("wordpiece_reference.jsonl"))) {
      if (row.contains("header"))
        r.header = std::move(row.at("header"));
      else if (row.contains("edge"))
        r.edge_rows.push_back(std::move(row));
      else
        r.corpus_rows.push_back(std::move(row));
    }
    return r;
  }();
  return ref;
}

std::string show_tokens(const wordpiece& t, const std::vector<token_id>& ids) {
  std::string s;
  for (const token_id id : ids) s.append(s.empty() ? "" : " ").append(t.contains(id) ? t.id_to_token(id) : "?");
  return s;
}

/// Compares ids; on a mismatch reports the text, the normalised text and both token spellings.
void check_ids(const wordpiece& t, const std::string& text, const std::vector<token_id>& got,
               const std::vector<token_id>& want, const std::string& what) {
  if (got == want) return;
  INFO(what << " on \"" << tt::escaped(text) << "\"\n  normalised: \"" << tt::escaped(t.normalize(text))
            << "\"\n  slim: " << tt::show(got) << " " << show_tokens(t, got) << "\n  HF:   " << tt::show(want) << " "
            << show_tokens(t, want));
  CHECK(got == want);
}

std::vector<std::pair<char32_t, std::u32string>> mapping_entries(const tt::json& list) {
  std::vector<std::pair<char32_t, std::u32string>> out;
  for (const auto& e : list) {
    std::istringstream in(e.get<std::string>());
    std::string hex;
    std::u32string cps;
    while (in >> hex) cps.push_back(static_cast<char32_t>(std::stoul(hex, nullptr, 16)));
    out.emplace_back(cps[0], cps.substr(1));
  }
  return out;
}

std::vector<bool> range_set(const tt::json& ranges) {
  std::vector<bool> in(0x110000, false);
  for (const auto& r : ranges)
    for (auto c = r.at(0).get<std::uint32_t>(); c <= r.at(1).get<std::uint32_t>(); ++c) in[c] = true;
  return in;
}

std::string utf8_of(const std::u32string& s) {
  std::string out;
  for (const char32_t c : s) u::append_utf8(out, c);
  return out;
}

/// A folder under the system temp dir, removed at the end of the scope.
struct temp_dir {
  std::filesystem::path path;
  explicit temp_dir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / (name + "_" + std::to_string(std::random_device{}()))) {
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
};

/// The error message of `f()`, which must throw slim::error.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const slim::error& e) {
    return e.what();
  }
  FAIL("no slim::error was thrown");
  return {};
}

}  // namespace

TEST_CASE("wordpiece: ids identical to HF tokenizers on every corpus string, uncased and cased", "[text][wordpiece]") {
  const auto& ref = reference();
  const auto& texts = tt::corpus();
  REQUIRE(ref.corpus_rows.size() == texts.size());
  REQUIRE(texts.size() >= 500);
  CHECK(uncased().vocab_size() == ref.header.at("vocab_size").get<std::size_t>());
  std::size_t decoded = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto& row = ref.corpus_rows[i];
    REQUIRE(row.at("id").get<std::size_t>() == i);
    const auto& text = texts[i];
    for (const auto& [name, tok] : {std::pair{"uncased", &uncased()}, std::pair{"cased", &cased()}}) {
      const auto ids = tok->encode(text);
      check_ids(*tok, text, ids, tt::ids_of(row.at(name)), name);
      if (const auto key = std::string(name) + "_decoded"; row.contains(key)) {
        ++decoded;
        INFO(name << " decode of \"" << tt::escaped(text) << "\"");
        CHECK(tok->decode(ids) == row.at(key).get<std::string>());
      }
    }
  }
  CHECK(decoded >= 2 * (texts.size() / 5));
}

TEST_CASE("wordpiece: edge strings under every normaliser option match HF", "[text][wordpiece]") {
  const auto opts = [](bool clean, bool chinese, std::optional<bool> strip, bool lower) {
    wordpiece_options o;
    o.clean_text = clean;
    o.handle_chinese_chars = chinese;
    o.strip_accents = strip;
    o.lowercase = lower;
    return o;
  };
  const wordpiece nonorm = wordpiece::from_vocab_file(vocab_path(), opts(false, false, std::nullopt, false));
  const wordpiece cased_strip = wordpiece::from_vocab_file(vocab_path(), opts(true, true, true, false));
  const wordpiece lower_keep = wordpiece::from_vocab_file(vocab_path(), opts(true, true, false, true));
  REQUIRE(reference().edge_rows.size() >= 40);
  for (const auto& row : reference().edge_rows) {
    const std::string text = row.at("edge").get<std::string>();
    check_ids(uncased(), text, uncased().encode(text), tt::ids_of(row.at("uncased")), "uncased");
    check_ids(cased(), text, cased().encode(text), tt::ids_of(row.at("cased")), "cased");
    check_ids(nonorm, text, nonorm.encode(text), tt::ids_of(row.at("nonorm")), "nonorm");
    check_ids(cased_strip, text, cased_strip.encode(text), tt::ids_of(row.at("cased_strip")), "cased_strip");
    check_ids(lower_keep, text, lower_keep.encode(text), tt::ids_of(row.at("lower_keep")), "lower_keep");
    const auto with_special = uncased().encode(text, {.add_special = true});
    check_ids(uncased(), text, with_special, tt::ids_of(row.at("uncased_special")), "add_special");
    check_ids(uncased(), text, uncased().encode(text, {.add_special = false, .split_special = false}),
              tt::ids_of(row.at("uncased_nosplit")), "split_special off");
    INFO("decoding \"" << tt::escaped(text) << "\"");
    CHECK(uncased().decode(with_special) == row.at("uncased_decoded").get<std::string>());
    CHECK(uncased().decode(with_special, {.skip_special = true}) == row.at("uncased_decoded_skip").get<std::string>());
    CHECK(uncased().decode(with_special, {}, true) == row.at("uncased_decoded_cleanup").get<std::string>());
  }
}

TEST_CASE("wordpiece: an HF tokenizer.json with every option changed matches HF", "[text][wordpiece]") {
  const auto& t = small();
  CHECK(t.vocab_size() == reference().header.at("small_vocab_size").get<std::size_t>());
  CHECK(t.continuing_subword_prefix() == "@@");
  CHECK(t.max_input_chars_per_word() == 12);
  CHECK(t.has_normalizer());
  CHECK(!t.normalizer().clean_text());
  CHECK(!t.normalizer().handle_chinese_chars());
  CHECK(!t.normalizer().strip_accents());
  CHECK(t.normalizer().lowercase());
  CHECK(t.decoder_cleanup());
  REQUIRE(t.added_tokens().size() == 8);  // the five special tokens, "New York", "c++", "<extra>"
  const auto& texts = tt::corpus();
  std::size_t checked = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    const auto& row = reference().corpus_rows[i];
    if (!row.contains("small")) continue;
    check_ids(t, texts[i], t.encode(texts[i]), tt::ids_of(row.at("small")), "small");
    ++checked;
  }
  CHECK(checked == (texts.size() + 2) / 3);
  for (const auto& row : reference().edge_rows) {
    const std::string text = row.at("edge").get<std::string>();
    const auto ids = t.encode(text);
    check_ids(t, text, ids, tt::ids_of(row.at("small")), "small");
    check_ids(t, text, t.encode(text, {.add_special = true}), tt::ids_of(row.at("small_special")), "small+special");
    INFO("decoding \"" << tt::escaped(text) << "\"");
    CHECK(t.decode(ids) == row.at("small_decoded").get<std::string>());
  }
}

TEST_CASE("bert character classes equal HF's on every code point", "[text][wordpiece][unicode]") {
  const auto unicode = tt::json::parse(tt::read_bytes(tt::fixture("wordpiece_unicode.json")));
  const auto control = range_set(unicode.at("control")), whitespace = range_set(unicode.at("whitespace")),
             punctuation = range_set(unicode.at("punctuation")), split = range_set(unicode.at("split")),
             chinese = range_set(unicode.at("chinese")), removed = range_set(unicode.at("strip_removed"));
  std::vector<std::u32string> strip(0x110000), lower(0x110000);
  for (const auto& [cp, r] : mapping_entries(unicode.at("strip"))) strip[cp] = r;
  for (const auto& [cp, r] : mapping_entries(unicode.at("lower"))) lower[cp] = r;
  const bert::normalizer clean_only({true, false, false, false}), strip_only({false, false, true, false}),
      lower_only({false, false, false, true});
  std::size_t bad = 0, newer_case = 0, hangul_checked = 0;
  auto expect = [&](bool ok, char32_t cp, const char* what) {
    if (ok) return;
    if (++bad <= 20) {
      INFO(what << " differs from HF at U+" << std::hex << static_cast<unsigned>(cp));
      CHECK(ok);
    }
  };
  std::string one, out;
  for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    one.clear();
    u::append_utf8(one, cp);
    clean_only(one, out);
    const bool dropped = out.empty(), spaced = out == " " && cp != ' ';
    expect(dropped == control[cp], cp, "clean_text dropping");
    expect(spaced == whitespace[cp], cp, "clean_text whitespace");
    expect(dropped == (cp == 0 || cp == 0xFFFD || bert::is_control(cp)), cp, "bert::is_control");
    expect(bert::is_punctuation(cp) == punctuation[cp], cp, "bert::is_punctuation");
    expect(bert::is_whitespace(cp) == split[cp], cp, "bert::is_whitespace");
    expect(bert::is_chinese_char(cp) == chinese[cp], cp, "bert::is_chinese_char");
    // Pre-tokenising "a" + c + "b" gives 3 words for punctuation, 2 for whitespace, 1 otherwise (as HF).
    one = "a" + one + "b";
    std::size_t words = 0;
    bert::pre_tokenize(one, [&](std::string_view) { ++words; });
    expect(words == (punctuation[cp] ? 3u : split[cp] ? 2u : 1u), cp, "bert::pre_tokenize");
    one = one.substr(1, one.size() - 2);
    strip_only(one, out);
    std::string want = removed[cp] ? "" : strip[cp].empty() ? one : utf8_of(strip[cp]);
    if (!removed[cp] && strip[cp].empty() && cp >= 0xAC00 && cp <= 0xD7A3) {
      // Hangul: the fixture keeps every 29th syllable; the generator checked the rest are the algorithm's.
      std::u32string jamo;
      u::append_canonical_decomposition(cp, jamo);
      want = utf8_of(jamo);
      ++hangul_checked;
    }
    expect(out == want, cp, "strip_accents");
    lower_only(one, out);
    want = lower[cp].empty() ? one : utf8_of(lower[cp]);
    if (out != want && u::category(cp) == u::general_category::Cn) {
      ++newer_case;  // a case pair Unicode added after 15.0 (HF's Rust is newer)
      continue;
    }
    expect(out == want, cp, "lowercase");
  }
  CHECK(bad == 0);
  CHECK(newer_case <= 64);
  CHECK(hangul_checked > 10000);
}

TEST_CASE("wordpiece: BERT basic-tokenizer facts", "[text][wordpiece]") {
  const auto& t = uncased();
  const bert::normalizer norm;  // HF's defaults
  CHECK(norm(std::string_view("H\xC3\xA9llo\tW\xC3\xB6rld\x00!", 15)) == "hello world!");
  CHECK(norm("\xE4\xB8\xAD\xE6\x96\x87") == " \xE4\xB8\xAD  \xE6\x96\x87 ");  // 中文 → " 中  文 "
  CHECK(norm("\xF0\xAB\xA0\xA0") == "\xF0\xAB\xA0\xA0");                      // U+2B820 is outside HF's CJK ranges
  CHECK(norm("\xC4\xB0") == "i");                                             // İ: NFD drops the dot, then lower-case
  CHECK(norm("a\u200Db") == "ab");                                            // ZWJ (Cf) is dropped
  CHECK(norm("a\u0085b") == "ab");                                            // NEL is Cc: dropped although White_Space
  CHECK(norm("a\u2028b") == "a b");                                           // LINE SEPARATOR: whitespace
  const bert::normalizer keep_accents({true, true, false, true});
  CHECK(keep_accents("\xC4\xB0") == "i\xCC\x87");  // İ → i̇ when accents stay
  std::vector<std::string> words;
  bert::pre_tokenize("Hey friend!     How are you?!?", [&](std::string_view w) { words.emplace_back(w); });
  CHECK(words == std::vector<std::string>{"Hey", "friend", "!", "How", "are", "you", "?", "!", "?"});
  // The Tokenizer surface.
  CHECK(t.token_to_id("[CLS]") == 2);
  CHECK(t.token_to_id("[SEP]") == 3);
  CHECK(t.bos_id() == 2);
  CHECK(t.eos_id() == 3);
  CHECK(t.unk_id() == 1);
  for (token_id id = 0; id < 5; ++id) CHECK(t.is_special(id));
  CHECK(!t.is_special(5));
  CHECK(!t.is_special(-1));
  CHECK(!t.is_special(static_cast<token_id>(t.vocab_size())));
  for (token_id id = 0; id < static_cast<token_id>(t.vocab_size()); ++id) CHECK(t.token_to_id(t.id_to_token(id)) == id);
  CHECK(!t.token_to_id("no such token"));
  CHECK_THROWS_AS(t.decode(std::vector<token_id>{static_cast<token_id>(t.vocab_size())}), slim::error);
  CHECK_THROWS_AS(t.id_to_token(-1), slim::error);
  CHECK(t.encode("").empty());
  CHECK(t.encode("", {.add_special = true}) == std::vector<token_id>{2, 3});
  // A word of 100 characters is tokenised; 101 is [UNK] (the character count, not bytes).
  CHECK(t.encode(std::string(100, 'x')) != std::vector<token_id>{1});
  CHECK(t.encode(std::string(101, 'x')) == std::vector<token_id>{1});
}

TEST_CASE("wordpiece: decode follows HF's WordPiece decoder, streaming included", "[text][wordpiece]") {
  const auto& t = uncased();
  const auto the_id = t.token_to_id("the"), ing_id = t.token_to_id("##ing"), dot_id = t.token_to_id("."),
             comma_id = t.token_to_id(",");
  REQUIRE((the_id && ing_id && dot_id && comma_id));
  const token_id the = *the_id, ing = *ing_id, dot = *dot_id, comma = *comma_id, cls = 2, sep = 3;
  CHECK(t.decode_piece(the) == " the");
  CHECK(t.decode_piece(ing) == "ing");
  CHECK(t.decode_piece(cls) == " [CLS]");
  const std::vector<token_id> ids{cls, the, ing, the, sep};
  CHECK(t.decode(ids) == "[CLS] theing the [SEP]");
  CHECK(t.decode(ids, {.skip_special = true}) == "theing the");
  CHECK(t.decode(std::vector<token_id>{ing, the}) == "##ing the");  // HF keeps the prefix of a first token
  // stream_decoder concatenates decode_piece: the text with a leading space.
  slim::text::stream_decoder<wordpiece> stream(t, {.skip_special = true});
  std::string streamed;
  for (const token_id id : ids) streamed += stream.push(id);
  streamed += stream.finish();
  CHECK(streamed == " theing the");
  // Clean-up only when asked: HF's rewrites.
  CHECK(t.decode(std::vector<token_id>{the, dot}) == "the .");
  CHECK(t.decode(std::vector<token_id>{the, comma, the, dot}, {}, true) == "the, the.");
  // Round trip where the normaliser changes nothing and every word is in one piece or spelled with ##.
  const std::string plain = "the user watched three space operas in a row";
  CHECK(t.decode(t.encode(plain)) == plain);
}

TEST_CASE("wordpiece: invalid UTF-8 reads as U+FFFD, which clean_text drops", "[text][wordpiece]") {
  const auto& t = uncased();
  CHECK(t.encode("caf\377e") == t.encode("cafe"));
  CHECK(t.encode("a\xC3") == t.encode("a"));
  CHECK(t.encode("\355\240\200ok") == t.encode("ok"));
  const wordpiece raw = wordpiece::from_vocab_file(vocab_path(), [] {
    wordpiece_options o;
    o.clean_text = false;
    return o;
  }());
  CHECK(raw.encode("caf\377e") == raw.encode("caf\uFFFDe"));
  CHECK(raw.normalize("a\200b") == "a\uFFFDb");
  // Arbitrary bytes never throw and give ids that decode to valid UTF-8.
  slim::philox_stream rng(11);
  for (int k = 0; k < 2000; ++k) {
    std::string s(rng.below(40), '\0');
    for (auto& c : s) c = static_cast<char>(rng.below(256));
    for (const wordpiece* tok : {&t, &raw, &small()}) {
      std::vector<token_id> ids;
      REQUIRE_NOTHROW(ids = tok->encode(s, {.add_special = true}));
      CHECK(u::is_valid_utf8(tok->decode(ids)));
    }
  }
}

TEST_CASE("wordpiece: vocab.txt errors name the file and the line", "[text][wordpiece][errors]") {
  temp_dir dir("slim_wordpiece");
  const auto msg = [&](const std::string& name, const std::string& text) {
    const auto p = dir.write(name, text);
    return error_of([&] { wordpiece::from_vocab_file(p); });
  };
  CHECK_THAT(msg("empty_line.txt", "[UNK]\nhello\n\nworld\n"), Catch::Contains("empty_line.txt: line 3: empty token"));
  CHECK_THAT(msg("dup.txt", "[UNK]\nhello\nworld\nhello\n"),
             Catch::Contains("dup.txt: line 4: token \"hello\" is already on line 2"));
  CHECK_THAT(msg("blank.txt", "[UNK]\n  \t\n"), Catch::Contains("blank.txt: line 2: empty token"));
  CHECK_THAT(msg("utf8.txt", "[UNK]\nok\nbad\xFF\n"), Catch::Contains("utf8.txt: line 3: not valid UTF-8"));
  CHECK_THAT(msg("nounk.txt", "hello\nworld\n"),
             Catch::Contains("the unknown token \"[UNK]\" is not in the vocabulary"));
  CHECK_THAT(msg("nothing.txt", ""), Catch::Contains("nothing.txt: empty vocabulary"));
  CHECK_THAT(error_of([&] { wordpiece::from_vocab_file((dir.path / "missing.txt").string()); }),
             Catch::Contains("missing.txt: cannot open"));
  // CRLF line ends and trailing whitespace are not part of a token (HF trims the end of each line).
  const auto ok = wordpiece::from_vocab_file(dir.write("crlf.txt", "[UNK]\r\nhello \r\n##s\u3000\nworld"));
  CHECK(ok.vocab_size() == 4);
  CHECK(ok.token_to_id("hello") == 1);
  CHECK(ok.token_to_id("##s") == 2);
  CHECK(ok.encode("hellos world") == std::vector<token_id>{1, 2, 3});
  // No [CLS] / [SEP] in this vocabulary: add_special adds nothing; "[", "cls", "]" and "x" are all unknown.
  CHECK(ok.encode("[CLS] x", {.add_special = true}) == std::vector<token_id>{0, 0, 0, 0});
  CHECK(!ok.bos_id());
}

TEST_CASE("wordpiece: tokenizer.json errors name the field", "[text][wordpiece][errors]") {
  const auto base = tt::json::parse(tt::read_bytes(tt::fixture("wordpiece_small.json")));
  const auto msg = [&](auto&& edit) {
    auto j = base;
    edit(j);
    return error_of([&] { wordpiece::from_hf_json(j.dump(), "tok.json"); });
  };
  CHECK_THAT(msg([](tt::json& j) { j["model"]["type"] = "BPE"; }),
             Catch::Contains("tok.json: field model.type: expected WordPiece, found BPE"));
  CHECK_THAT(msg([](tt::json& j) { j["model"].erase("vocab"); }), Catch::Contains("field model.vocab: missing"));
  CHECK_THAT(msg([](tt::json& j) { j["model"]["vocab"]["zzz"] = -3; }), Catch::Contains("model.vocab[\"zzz\"]"));
  CHECK_THAT(msg([](tt::json& j) { j["model"]["vocab"]["zzz"] = 5; }), Catch::Contains("id 5 is given to two tokens"));
  CHECK_THAT(msg([](tt::json& j) { j["model"]["unk_token"] = "<unk>"; }),
             Catch::Contains("field model.unk_token: \"<unk>\" is not in model.vocab"));
  CHECK_THAT(msg([](tt::json& j) {
               j["normalizer"] = {{"type", "NFC"}};
             }),
             Catch::Contains("field normalizer.type: normalizer NFC is not supported"));
  CHECK_THAT(msg([](tt::json& j) { j["normalizer"]["lowercase"] = "yes"; }),
             Catch::Contains("field normalizer.lowercase: expected a boolean"));
  CHECK_THAT(msg([](tt::json& j) {
               j["pre_tokenizer"] = {{"type", "Whitespace"}};
             }),
             Catch::Contains("field pre_tokenizer: WordPiece needs the BertPreTokenizer"));
  CHECK_THAT(msg([](tt::json& j) {
               j["decoder"] = {{"type", "ByteLevel"}};
             }),
             Catch::Contains("field decoder.type: decoder ByteLevel is not supported"));
  CHECK_THAT(msg([](tt::json& j) { j["post_processor"]["special_tokens"]["[CLS]"]["ids"][0] = 99999; }),
             Catch::Contains("post_processor.special_tokens.[CLS].ids[0]"));
  CHECK_THAT(msg([](tt::json& j) { j["added_tokens"][0]["id"] = 7; }), Catch::Contains("field added_tokens[0].id"));
  CHECK_THAT(error_of([] { wordpiece::from_hf_json("{\"model\": ", "cut.json"); }), Catch::Contains("cut.json: byte"));
}

TEST_CASE("wordpiece: from_file reads a folder, tokenizer.json first, and tokenizer_config.json", "[text][wordpiece]") {
  temp_dir dir("slim_wordpiece_dir");
  dir.write("vocab.txt", tt::read_bytes(vocab_path()));
  const std::string text = "Caf\xC3\xA9 NEW York";
  CHECK(wordpiece::from_file(dir.path.string()).encode(text) == uncased().encode(text));  // defaults: uncased
  dir.write("tokenizer_config.json", R"({"do_lower_case": false, "tokenize_chinese_chars": true})");
  CHECK(wordpiece::from_file(dir.path.string()).encode(text) == cased().encode(text));
  dir.write("tokenizer.json", tt::read_bytes(tt::fixture("wordpiece_small.json")));
  CHECK(wordpiece::from_file(dir.path.string()).encode(text) == small().encode(text));
  temp_dir empty("slim_wordpiece_empty");
  CHECK_THAT(error_of([&] { wordpiece::from_file(empty.path.string()); }),
             Catch::Contains("folder holds neither tokenizer.json nor vocab.txt"));
}

TEST_CASE("wordpiece: 1 MB words and runs encode in linear time", "[text][wordpiece][scale]") {
  constexpr std::size_t mb = 1 << 20;
  slim::philox_stream rng(5);
  std::string word(mb, 'a');
  for (auto& c : word) c = static_cast<char>('a' + rng.below(26));
  std::string accents, cjk, marks = "a", mixed;
  while (accents.size() < mb) accents += "\xC3\x89";  // É: NFD, strip, lower-case on every character
  while (cjk.size() < mb) cjk += "\xE4\xB8\xAD";      // 中: a word each
  while (marks.size() < mb) marks += "\xCC\x81\xCC\x96";
  while (mixed.size() < mb) mixed += "the user's 3 favourite space-operas, ranked! ";
  const std::vector<std::pair<const char*, std::string>> inputs{
      {"1 MB random-letter word", word},         {"1 MB run of 'a'", std::string(mb, 'a')},
      {"1 MB run of '!'", std::string(mb, '!')}, {"1 MB run of spaces", std::string(mb, ' ')},
      {"1 MB run of U+00C9", accents},           {"1 MB run of U+4E2D", cjk},
      {"1 MB of combining marks", marks},        {"1 MB of sentences", mixed}};
  for (const auto& [name, text] : inputs) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto ids = uncased().encode(text);
    const double big = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto t1 = std::chrono::steady_clock::now();
    const auto small_ids = uncased().encode(std::string_view(text).substr(0, text.size() / 8));
    const double eighth = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    INFO(name << ": " << big << " s; an eighth of it: " << eighth << " s; " << ids.size() << " tokens");
    CHECK(big < 15.0);                         // well under a second at -O2; generous for sanitizers
    CHECK((big < 0.25 || big < 24 * eighth));  // 8x the input may not cost 64x (quadratic)
    CHECK(ids.size() <= text.size());
    (void)small_ids;
  }
  CHECK(uncased().encode(word) == std::vector<token_id>{uncased().unk_id()});  // over 100 characters: [UNK]
  CHECK(uncased().encode(std::string(mb, '!')).size() == mb);
  CHECK(uncased().encode(std::string(mb, ' ')).empty());
  CHECK(uncased().encode(marks) == uncased().encode("a"));  // every mark stripped
}
