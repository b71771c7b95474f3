// slim — SentencePiece BPE (LLaMA / Llama-2 `tokenizer.model`), matching the `sentencepiece` library id for id.
//
// Loading: the ModelProto is read directly from the protobuf wire format (detail/protobuf_reader.hpp):
// pieces (piece, score, type), trainer_spec (model_type, byte_fallback, treat_whitespace_as_suffix,
// unk_surface, bos_piece, eos_piece) and normalizer_spec (precompiled_charsmap, add_dummy_prefix,
// remove_extra_whitespaces, escape_whitespaces). Malformed or truncated files throw slim::error naming the
// file, the byte offset and the field. Not supported (rejected with an error naming the field): model types
// other than BPE, a non-empty precompiled_charsmap (i.e. normalisation other than "identity", as LLaMA
// uses), treat_whitespace_as_suffix, and a denormalizer with a charsmap.
//
// Encoding, as sentencepiece's normalizer + BPE model (bpe_model.cc):
//   1. normalise: each ill-formed UTF-8 byte becomes U+FFFD (sentencepiece consumes one byte per error, so
//      this tokenizer's invalid-UTF-8 policy is *replacement*, not byte round trip); with
//      remove_extra_whitespaces, leading/trailing spaces are dropped and runs collapse to one; with
//      add_dummy_prefix a space goes in front of non-empty text; with escape_whitespaces ' ' becomes U+2581.
//   2. split into characters (USER_DEFINED pieces are matched longest-first and never merged);
//   3. repeatedly merge the adjacent pair whose concatenation is a piece with the highest score, leftmost
//      first among equal scores (a heap with lazy invalidation: O(n log n) in the text length). When no
//      piece holds a U+2581 after another character (LLaMA) and there are no UNUSED pieces, no merge can
//      cross a word start, so each word is merged on its own — the same ids with a much smaller heap;
//   4. a symbol that is an UNUSED piece is split back into the pair that formed it; a symbol that is not a
//      piece becomes its UTF-8 bytes as <0xNN> pieces under byte_fallback, else the unknown piece (a run of
//      adjacent unknown symbols gives one unknown piece, as sentencepiece merges them).
// Control pieces written in the text ("<s>") are *not* recognised — sentencepiece treats them as text —
// so `encode_options::split_special` has no effect. `encode_options::add_special` adds BOS (as LLaMA's
// tokenizers do; `set_add_bos` / `set_add_eos` change that).
//
// Decoding concatenates `decode_piece` (U+2581 → ' ', byte pieces → their byte, control pieces → their
// spelling unless skipped, the unknown piece → trainer_spec.unk_surface, default " ⁇ "), except that — as
// in sentencepiece — the leading U+2581 of the first text piece is dropped when the model adds a dummy
// prefix (with remove_extra_whitespaces, that of every piece until one leaves text). `stream_decoder` output
// therefore keeps that leading space; strip it there.
// Byte pieces are not validated: `decode` returns the bytes as they are (see tokenizer.hpp).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "slim/core/error.hpp"
#include "slim/text/detail/flat_map.hpp"
#include "slim/text/detail/json_fields.hpp"
#include "slim/text/detail/protobuf_reader.hpp"
#include "slim/text/tokenizer.hpp"
#include "slim/text/unicode.hpp"

namespace slim::text {

/// SentencePiece BPE tokenizer. Immutable after loading (apart from set_add_bos/eos); const member
/// functions are safe to call from many threads at once.
class sentencepiece_bpe {
 public:
  /// ModelProto.SentencePiece.Type.
  enum class piece_type : std::uint8_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

  /// Loads a `tokenizer.model` file.
  static sentencepiece_bpe from_file(const std::string& path) {
    return from_model_proto(detail::read_file(path), path);
  }

  /// Builds from the bytes of a serialised ModelProto; `where` names it in errors.
  static sentencepiece_bpe from_model_proto(std::string_view bytes, const std::string& where) {
    sentencepiece_bpe t;
    t.load(bytes, where);
    return t;
  }

  // ---- Tokenizer ---------------------------------------------------------------------------------------

  /// Token ids of `text` (see the file comment; never throws on text).
  std::vector<token_id> encode(std::string_view text, encode_options options = {}) const {
    std::vector<token_id> out;
    encode_into(text, out, options);
    return out;
  }

  /// Appends the ids of `text` to `out`.
  void encode_into(std::string_view text, std::vector<token_id>& out, encode_options options = {}) const {
    if (options.add_special && add_bos_ && bos_) out.push_back(*bos_);
    encode_text(text, out);
    if (options.add_special && add_eos_ && eos_) out.push_back(*eos_);
  }

  /// The text `ids` spell (see the file comment); throws on an id outside the vocabulary.
  std::string decode(std::span<const token_id> ids, decode_options options = {}) const {
    std::string out;
    bool at_start = strip_dummy_prefix_;
    for (const token_id id : ids) {
      const piece_info& p = checked(id, "sentencepiece_bpe::decode");
      if (options.skip_special && is_special_type(p.type)) continue;
      std::string_view s = std::string_view(decoded_arena_).substr(p.decoded_offset, p.decoded_length);
      if (p.type == piece_type::control) {
        out.append(s);
        continue;
      }
      bool consumed = false;
      if (at_start && p.type != piece_type::unknown && p.type != piece_type::byte && !s.empty() && s.front() == ' ' &&
          std::string_view(text_arena_).substr(p.text_offset, p.text_length).substr(0, 3) == space_symbol) {
        s.remove_prefix(1);
        consumed = true;
      }
      // sentencepiece: one dummy space is consumed; with remove_extra_whitespaces every leading one is
      if ((consumed && !remove_extra_whitespaces_) || !s.empty()) at_start = false;
      out.append(s);
    }
    return out;
  }

  /// The bytes one token spells inside a text (no dummy-prefix stripping).
  std::string_view decode_piece(token_id id) const {
    const piece_info& p = checked(id, "sentencepiece_bpe::decode_piece");
    return std::string_view(decoded_arena_).substr(p.decoded_offset, p.decoded_length);
  }

  /// Number of pieces (ids are 0 .. vocab_size() - 1).
  std::size_t vocab_size() const noexcept { return pieces_.size(); }

  /// Id of a piece in the model's spelling ("▁the", "<0x0A>", "<s>").
  std::optional<token_id> token_to_id(std::string_view token) const {
    if (const auto* id = reserved_.find(token)) return *id;
    if (const auto* id = normal_.find(token)) return *id;
    return std::nullopt;
  }

  /// The model's spelling of a piece; throws on an id outside the vocabulary.
  std::string_view id_to_token(token_id id) const {
    const piece_info& p = checked(id, "sentencepiece_bpe::id_to_token");
    return std::string_view(text_arena_).substr(p.text_offset, p.text_length);
  }

  /// True for control pieces (<s>, </s>) and the unknown piece.
  bool is_special(token_id id) const noexcept { return contains(id) && is_special_type(pieces_[to_index(id)].type); }
  /// True when `id` names a piece.
  bool contains(token_id id) const noexcept { return id >= 0 && static_cast<std::size_t>(id) < pieces_.size(); }

  std::optional<token_id> bos_id() const noexcept { return bos_; }
  std::optional<token_id> eos_id() const noexcept { return eos_; }
  token_id unk_id() const noexcept { return unk_; }

  /// Whether `encode_options::add_special` adds BOS (default true) and EOS (default false).
  void set_add_bos(bool on) noexcept { add_bos_ = on; }
  void set_add_eos(bool on) noexcept { add_eos_ = on; }

  // ---- introspection -------------------------------------------------------------------------------------

  piece_type type(token_id id) const { return checked(id, "sentencepiece_bpe::type").type; }
  float score(token_id id) const { return checked(id, "sentencepiece_bpe::score").score; }
  bool byte_fallback() const noexcept { return byte_fallback_; }
  bool add_dummy_prefix() const noexcept { return add_dummy_prefix_; }
  bool remove_extra_whitespaces() const noexcept { return remove_extra_whitespaces_; }
  bool escape_whitespaces() const noexcept { return escape_whitespaces_; }
  /// Whether encode merges each word (a U+2581 after another character starts one) on its own — an
  /// optimisation that gives the same ids, used when no piece could span a word start.
  bool merges_words_separately() const noexcept { return segment_at_spaces_; }

 private:
  static constexpr std::string_view space_symbol = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

  struct piece_info {
    std::uint32_t text_offset = 0, text_length = 0, decoded_offset = 0, decoded_length = 0;
    float score = 0;
    piece_type type = piece_type::normal;
  };
  struct symbol {
    std::size_t begin;     // byte offset in the normalised text
    std::uint32_t length;  // a piece (at most 16 MiB, checked on load) or one character
    std::int32_t prev, next;
    bool freeze;
  };
  struct candidate {
    float score;
    std::int32_t left, right;
    std::uint32_t size;
  };

  static bool is_special_type(piece_type t) noexcept { return t == piece_type::control || t == piece_type::unknown; }
  static std::size_t to_index(token_id id) noexcept { return static_cast<std::size_t>(id); }

  const piece_info& checked(token_id id, const char* where) const {
    if (!contains(id)) throw error(where, detail::cat("id ", id), "not in the vocabulary");
    return pieces_[to_index(id)];
  }

  // ---- encoding --------------------------------------------------------------------------------------

  /// sentencepiece's Normalizer::Normalize with an identity charsmap.
  std::string normalize(std::string_view in) const {
    std::string out;
    std::size_t i = 0;
    auto next_unit = [&](std::string_view& unit) {
      const auto u = unicode::decode_utf8(in, i);
      if (u.status == unicode::utf8_status::ok) {
        unit = in.substr(i, u.length);
        i += u.length;
      } else {
        unit = "\xEF\xBF\xBD";  // one byte becomes U+FFFD, as sentencepiece does
        i += 1;
      }
    };
    if (remove_extra_whitespaces_)
      while (i < in.size() && in[i] == ' ') ++i;
    if (i >= in.size()) return out;
    out.reserve(in.size() + in.size() / 2 + 4);
    const std::string_view space = escape_whitespaces_ ? space_symbol : std::string_view(" ");
    if (add_dummy_prefix_) out.append(space);
    bool prev_space = remove_extra_whitespaces_;
    std::string_view unit;
    while (i < in.size()) {
      next_unit(unit);
      if (unit == " ") {
        if (!prev_space) out.append(space);
        prev_space = remove_extra_whitespaces_;
      } else {
        out.append(unit);
        prev_space = false;
      }
    }
    if (remove_extra_whitespaces_)
      while (out.size() >= space.size() && std::string_view(out).substr(out.size() - space.size()) == space)
        out.resize(out.size() - space.size());
    return out;
  }

  /// Length of the symbol that starts at `pos`: the longest USER_DEFINED piece there, else one character.
  std::uint32_t symbol_length(std::string_view s, std::size_t pos, bool& freeze) const {
    freeze = false;
    std::size_t best = 0;
    for (const token_id id : user_defined_by_byte_[static_cast<unsigned char>(s[pos])]) {
      const piece_info& p = pieces_[to_index(id)];
      if (p.text_length > best &&
          s.substr(pos, p.text_length) == std::string_view(text_arena_).substr(p.text_offset, p.text_length))
        best = p.text_length;
    }
    if (best > 0) {
      freeze = true;
      return static_cast<std::uint32_t>(best);
    }
    const auto b = static_cast<unsigned char>(s[pos]);
    const std::size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;  // the text is valid UTF-8 here
    return static_cast<std::uint32_t>(std::min(len, s.size() - pos));
  }

  void encode_text(std::string_view text, std::vector<token_id>& out) const {
    const std::string norm = normalize(text);
    if (norm.empty()) return;
    const std::string_view ns(norm);
    std::vector<symbol> sym;
    std::vector<candidate> heap;
    std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>> rev_merge;
    bool prev_unk = false;  // without byte fallback, a run of unknown symbols is one unknown piece
    // Merges never cross a U+2581 that follows another character when no piece could span it (see
    // `segment_at_spaces_`): then each such word is merged on its own, which keeps the heap small.
    std::size_t begin = 0;
    while (begin < ns.size()) {
      std::size_t end = ns.size();
      if (segment_at_spaces_) {
        for (std::size_t p = ns.find(space_symbol, begin + 1); p != std::string_view::npos;
             p = ns.find(space_symbol, p + 1)) {
          if (p >= 3 && ns.substr(p - 3, 3) == space_symbol) continue;
          end = p;
          break;
        }
      }
      encode_segment(ns, begin, end, sym, heap, rev_merge, prev_unk, out);
      begin = end;
    }
  }

  void encode_segment(std::string_view ns, std::size_t begin, std::size_t end, std::vector<symbol>& sym,
                      std::vector<candidate>& heap,
                      std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>>& rev_merge,
                      bool& prev_unk, std::vector<token_id>& out) const {
    sym.clear();
    heap.clear();
    const std::string_view seg = ns.substr(0, end);
    for (std::size_t pos = begin; pos < end;) {
      bool freeze;
      const std::uint32_t len = symbol_length(seg, pos, freeze);
      const auto index = static_cast<std::int32_t>(sym.size());
      sym.push_back({pos, len, index - 1, pos + len < end ? index + 1 : -1, freeze});
      pos += len;
    }

    // Highest score first; leftmost first among equal scores (sentencepiece's SymbolPairComparator).
    auto lower = [](const candidate& a, const candidate& b) {
      return a.score < b.score || (a.score == b.score && a.left > b.left);
    };
    auto piece_of = [&](const symbol& s) { return ns.substr(s.begin, s.length); };
    auto consider = [&](std::int32_t left, std::int32_t right, bool push) {
      if (left < 0 || right < 0) return;
      const symbol& l = sym[static_cast<std::size_t>(left)];
      const symbol& r = sym[static_cast<std::size_t>(right)];
      if (l.freeze || r.freeze) return;
      const std::string_view merged = ns.substr(l.begin, l.length + r.length);
      const auto* id = normal_.find(merged);
      if (!id) return;
      const piece_info& p = pieces_[to_index(*id)];
      heap.push_back({p.score, left, right, l.length + r.length});
      if (push) std::push_heap(heap.begin(), heap.end(), lower);
      if (p.type == piece_type::unused) rev_merge[merged] = {piece_of(l), piece_of(r)};
    };
    for (std::size_t i = 1; i < sym.size(); ++i)
      consider(static_cast<std::int32_t>(i - 1), static_cast<std::int32_t>(i), false);
    std::make_heap(heap.begin(), heap.end(), lower);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), lower);
      const candidate top = heap.back();
      heap.pop_back();
      symbol& l = sym[static_cast<std::size_t>(top.left)];
      symbol& r = sym[static_cast<std::size_t>(top.right)];
      if (l.length == 0 || r.length == 0 || l.length + r.length != top.size) continue;  // stale
      l.length += r.length;
      l.next = r.next;
      if (r.next >= 0) sym[static_cast<std::size_t>(r.next)].prev = top.left;
      r.length = 0;
      consider(l.prev, top.left, true);
      consider(top.left, l.next, true);
    }

    auto emit = [&](auto& self, std::string_view piece) -> void {
      token_id id = unk_;
      if (const auto* rid = reserved_.find(piece))
        id = *rid;
      else if (const auto* nid = normal_.find(piece))
        id = *nid;
      if (pieces_[to_index(id)].type == piece_type::unused) {
        if (const auto it = rev_merge.find(piece); it != rev_merge.end()) {
          self(self, it->second.first);
          self(self, it->second.second);
          return;
        }
      }
      if (id == unk_ && byte_fallback_) {
        for (const char c : piece) out.push_back(byte_ids_[static_cast<unsigned char>(c)]);
        return;
      }
      if (id == unk_ && prev_unk) return;
      prev_unk = id == unk_;
      out.push_back(id);
    };
    for (std::int32_t i = 0; i >= 0; i = sym[static_cast<std::size_t>(i)].next)
      emit(emit, piece_of(sym[static_cast<std::size_t>(i)]));
  }

  // ---- loading ---------------------------------------------------------------------------------------

  static const char* model_field_name(std::uint32_t n) {
    switch (n) {
      case 1:
        return "pieces";
      case 2:
        return "trainer_spec";
      case 3:
        return "normalizer_spec";
      case 4:
        return "self_test_data";
      case 5:
        return "denormalizer_spec";
      default:
        return nullptr;
    }
  }
  static const char* piece_field_name(std::uint32_t n) {
    switch (n) {
      case 1:
        return "piece";
      case 2:
        return "score";
      case 3:
        return "type";
      default:
        return nullptr;
    }
  }
  static const char* trainer_field_name(std::uint32_t n) {
    switch (n) {
      case 3:
        return "model_type";
      case 24:
        return "treat_whitespace_as_suffix";
      case 35:
        return "byte_fallback";
      case 44:
        return "unk_surface";
      case 46:
        return "bos_piece";
      case 47:
        return "eos_piece";
      default:
        return nullptr;
    }
  }
  static const char* normalizer_field_name(std::uint32_t n) {
    switch (n) {
      case 1:
        return "name";
      case 2:
        return "precompiled_charsmap";
      case 3:
        return "add_dummy_prefix";
      case 4:
        return "remove_extra_whitespaces";
      case 5:
        return "escape_whitespaces";
      default:
        return nullptr;
    }
  }

  /// "<0xNN>" (two upper-case hex digits, sentencepiece's spelling) → NN, else -1.
  static int byte_of_piece(std::string_view s) noexcept {
    if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
    auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; };
    const int hi = hex(s[3]), lo = hex(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
  }

  struct raw_piece {
    std::string_view text;
    float score = 0;
    std::uint64_t type = 1;
    std::size_t offset = 0;
  };

  void load(std::string_view bytes, const std::string& where) {
    detail::pb_reader top(bytes, 0, where, "", &model_field_name);
    std::vector<raw_piece> raw;
    bool have_trainer = false;
    std::uint64_t model_type = 1;  // proto default UNIGRAM
    std::size_t model_type_offset = 0;
    std::string_view bos_piece = "<s>", eos_piece = "</s>", unk_surface = " \xE2\x81\x87 ";
    detail::pb_field f;
    while (top.next(f)) {
      if (f.number == 1) {
        top.expect(f, detail::wire_type::length_delimited, "pieces");
        const std::string path = detail::cat("pieces[", raw.size(), "]");
        detail::pb_reader r(f.bytes, f.bytes_offset, where, path, &piece_field_name);
        raw_piece p;
        p.offset = f.offset;
        detail::pb_field g;
        while (r.next(g)) {
          if (g.number == 1) {
            r.expect(g, detail::wire_type::length_delimited, "piece");
            p.text = g.bytes;
          } else if (g.number == 2) {
            r.expect(g, detail::wire_type::fixed32, "score");
            p.score = detail::pb_float(g.integer);
          } else if (g.number == 3) {
            r.expect(g, detail::wire_type::varint, "type");
            if (g.integer < 1 || g.integer > 6) r.fail(g.offset, detail::cat("type: invalid value ", g.integer));
            p.type = g.integer;
          }
        }
        if (p.text.empty()) r.fail(f.offset, "piece: missing or empty");
        if (p.text.size() > 0xFFFFFFu) r.fail(f.offset, "piece: longer than 16 MiB");
        raw.push_back(p);
      } else if (f.number == 2) {
        top.expect(f, detail::wire_type::length_delimited, "trainer_spec");
        have_trainer = true;
        detail::pb_reader r(f.bytes, f.bytes_offset, where, "trainer_spec", &trainer_field_name);
        detail::pb_field g;
        while (r.next(g)) {
          switch (g.number) {
            case 3:
              r.expect(g, detail::wire_type::varint, "model_type");
              model_type = g.integer;
              model_type_offset = g.offset;
              break;
            case 24:
              r.expect(g, detail::wire_type::varint, "treat_whitespace_as_suffix");
              if (g.integer) r.fail(g.offset, "treat_whitespace_as_suffix: true is not supported");
              break;
            case 35:
              r.expect(g, detail::wire_type::varint, "byte_fallback");
              byte_fallback_ = g.integer != 0;
              break;
            case 44:
              r.expect(g, detail::wire_type::length_delimited, "unk_surface");
              unk_surface = g.bytes;
              break;
            case 46:
              r.expect(g, detail::wire_type::length_delimited, "bos_piece");
              bos_piece = g.bytes;
              break;
            case 47:
              r.expect(g, detail::wire_type::length_delimited, "eos_piece");
              eos_piece = g.bytes;
              break;
            default:
              break;  // training-only settings
          }
        }
      } else if (f.number == 3 || f.number == 5) {
        const bool denorm = f.number == 5;
        const char* name = denorm ? "denormalizer_spec" : "normalizer_spec";
        top.expect(f, detail::wire_type::length_delimited, name);
        detail::pb_reader r(f.bytes, f.bytes_offset, where, name, &normalizer_field_name);
        detail::pb_field g;
        while (r.next(g)) {
          switch (g.number) {
            case 1:
              r.expect(g, detail::wire_type::length_delimited, "name");
              break;
            case 2:
              r.expect(g, detail::wire_type::length_delimited, "precompiled_charsmap");
              if (!g.bytes.empty())
                r.fail(g.offset, "precompiled_charsmap: only identity normalisation (an empty charsmap) is supported");
              break;
            case 3:
            case 4:
            case 5: {
              r.expect(g, detail::wire_type::varint, normalizer_field_name(g.number));
              if (denorm) break;
              const bool on = g.integer != 0;
              (g.number == 3   ? add_dummy_prefix_
               : g.number == 4 ? remove_extra_whitespaces_
                               : escape_whitespaces_) = on;
              break;
            }
            default:
              break;
          }
        }
      }
      // other fields (self_test_data, unknown numbers) are skipped
    }
    if (!have_trainer) throw error(where, "trainer_spec", "missing (the model type is unknown)");
    if (model_type != 2)
      throw error(where, detail::cat("offset ", model_type_offset),
                  detail::cat("trainer_spec.model_type: ", model_type,
                              model_type == 1   ? " (UNIGRAM)"
                              : model_type == 3 ? " (WORD)"
                              : model_type == 4 ? " (CHAR)"
                                                : "",
                              " is not supported; only BPE (2) is"));
    if (raw.empty()) throw error(where, "pieces", "no pieces");
    if (raw.size() > 0x7FFFFFFFu) throw error(where, "pieces", "too many pieces");

    pieces_.resize(raw.size());
    normal_.reserve(raw.size());
    byte_ids_.fill(-1);
    std::int32_t unk = -1;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      const raw_piece& rp = raw[i];
      const auto id = static_cast<token_id>(i);
      const auto type = static_cast<piece_type>(rp.type);
      const std::string place = detail::cat("offset ", rp.offset);
      const std::string field = detail::cat("pieces[", i, "] ", detail::quote_token(rp.text), ": ");
      const bool normal = type == piece_type::normal || type == piece_type::user_defined || type == piece_type::unused;
      if (normal_.find(rp.text) || reserved_.find(rp.text) || !(normal ? normal_ : reserved_).insert(rp.text, id))
        throw error(where, place, field + "defined twice");
      piece_info& p = pieces_[i];
      p.score = rp.score;
      p.type = type;
      p.text_offset = static_cast<std::uint32_t>(text_arena_.size());
      p.text_length = static_cast<std::uint32_t>(rp.text.size());
      text_arena_.append(rp.text);
      p.decoded_offset = static_cast<std::uint32_t>(decoded_arena_.size());
      switch (type) {
        case piece_type::unknown:
          if (unk >= 0)
            throw error(where, place, field + detail::cat("a second unknown piece (the first is id ", unk, ")"));
          unk = id;
          decoded_arena_.append(unk_surface);
          break;
        case piece_type::control:
          decoded_arena_.append(rp.text);
          break;
        case piece_type::byte: {
          if (!byte_fallback_)
            throw error(where, place, field + "a byte piece although trainer_spec.byte_fallback is false");
          const int b = byte_of_piece(rp.text);
          if (b < 0) throw error(where, place, field + "a byte piece must be spelled <0xNN>");
          if (byte_ids_[static_cast<std::size_t>(b)] >= 0) throw error(where, place, field + "byte defined twice");
          byte_ids_[static_cast<std::size_t>(b)] = id;
          decoded_arena_ += static_cast<char>(b);
          break;
        }
        default:
          for (std::size_t k = 0; k < rp.text.size();) {
            if (rp.text.substr(k, 3) == space_symbol) {
              decoded_arena_ += ' ';
              k += 3;
            } else {
              decoded_arena_ += rp.text[k++];
            }
          }
          if (type == piece_type::user_defined)
            user_defined_by_byte_[static_cast<unsigned char>(rp.text[0])].push_back(id);
      }
      p.decoded_length = static_cast<std::uint32_t>(decoded_arena_.size() - p.decoded_offset);
      if (decoded_arena_.size() > 0xFFFFFFFFu || text_arena_.size() > 0xFFFFFFFFu)
        throw error(where, place, "vocabulary text too large");
    }
    if (unk < 0) throw error(where, "pieces", "no piece of type UNKNOWN");
    unk_ = unk;
    if (byte_fallback_)
      for (std::size_t b = 0; b < 256; ++b)
        if (byte_ids_[b] < 0)
          throw error(where, "pieces",
                      detail::cat("trainer_spec.byte_fallback is true but byte piece <0x", "0123456789ABCDEF"[b >> 4],
                                  "0123456789ABCDEF"[b & 15], "> is missing"));
    auto control = [&](std::string_view name) -> std::optional<token_id> {
      const auto* id = reserved_.find(name);
      if (id && pieces_[to_index(*id)].type == piece_type::control) return *id;
      return std::nullopt;
    };
    bos_ = control(bos_piece);
    eos_ = control(eos_piece);
    strip_dummy_prefix_ = add_dummy_prefix_ || remove_extra_whitespaces_;
    // Words may be merged separately when no mergeable piece holds a U+2581 after another character (so no
    // merge crosses the start of a word) and no UNUSED piece exists (their resegmentation reads the last
    // split seen anywhere in the text, which depends on the global merge order).
    segment_at_spaces_ = true;
    for (const piece_info& p : pieces_) {
      if (p.type != piece_type::normal && p.type != piece_type::user_defined && p.type != piece_type::unused) continue;
      if (p.type == piece_type::unused) segment_at_spaces_ = false;
      const std::string_view t = std::string_view(text_arena_).substr(p.text_offset, p.text_length);
      for (std::size_t k = t.find(space_symbol, 1); k != std::string_view::npos; k = t.find(space_symbol, k + 1))
        if (k < 3 || t.substr(k - 3, 3) != space_symbol) segment_at_spaces_ = false;
    }
  }

  std::vector<piece_info> pieces_;
  std::string text_arena_, decoded_arena_;
  detail::string_map normal_;    // NORMAL, USER_DEFINED and UNUSED pieces (sentencepiece's pieces_)
  detail::string_map reserved_;  // CONTROL, UNKNOWN and BYTE pieces (sentencepiece's reserved_id_map_)
  std::array<token_id, 256> byte_ids_{};
  std::array<std::vector<token_id>, 256> user_defined_by_byte_{};
  token_id unk_ = 0;
  std::optional<token_id> bos_, eos_;
  bool byte_fallback_ = false;
  bool add_dummy_prefix_ = true, remove_extra_whitespaces_ = true, escape_whitespaces_ = true;
  bool strip_dummy_prefix_ = true;
  bool segment_at_spaces_ = false;
  bool add_bos_ = true, add_eos_ = false;
};

static_assert(Tokenizer<sentencepiece_bpe>);

}  // namespace slim::text
