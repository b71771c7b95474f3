#!/usr/bin/env python3
"""Generates include/slim/text/unicode_tables.hpp from the Unicode Character Database.

Input: the UCD text files as Debian's `unicode-data` package installs them (apt-get install unicode-data;
/usr/share/unicode/): UnicodeData.txt (general category, canonical combining class, canonical decompositions,
simple lowercase mappings), PropList.txt (White_Space), DerivedCoreProperties.txt (Alphabetic),
SpecialCasing.txt (unconditional multi-character lowercase mappings), DerivedNormalizationProps.txt
(Full_Composition_Exclusion) and DerivedAge.txt (the Unicode version that assigned each code point, for the
HF BERT tables below). The Unicode version is read from the files' own headers and written
into the generated header; the committed header was made from unicode-data 15.0.0-1 (Unicode 15.0.0).

Usage: tools/unicode/gen_tables.py [--ucd /usr/share/unicode] [--out include/slim/text/unicode_tables.hpp]
Needs only the Python standard library. The output is deterministic: rerunning on the same data gives the
same bytes, so a diff after regeneration shows exactly what a Unicode update changed.

The HF BERT tables (bert_*): HF `tokenizers`' BertNormalizer and BertPreTokenizer classify characters with the
`unicode_categories` crate 0.1.1, whose tables are Unicode 8.0, and decompose with
`unicode-normalization-alignments`, whose data is Unicode 9.0. slim's WordPiece reproduces them exactly, so
these tables hold those older views, derived from the current UCD: a property of the current data restricted to
the code points DerivedAge.txt dates to the old version, corrected by BERT_CATEGORY_CHANGES below (the
general-category changes between Unicode 8.0 and the current version that touch these classes).
tools/text_fixtures/make_wordpiece_reference.py records HF's behaviour on every code point and
tests/text/test_wordpiece.cpp checks the tables against it.
"""
import argparse
import os
import re
import sys

# The order fixes the numeric values of slim::text::unicode::general_category; keep it in step with unicode.hpp.
CATEGORIES = ["Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi",
              "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"]
MAX_CP = 0x10FFFF


def read_version(path):
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    m = re.search(r"-(\d+\.\d+\.\d+)\.txt", first)
    if not m:
        sys.exit(f"{path}: first line does not name the Unicode version: {first!r}")
    return m.group(1)


def read_general_categories(path):
    """Returns a list of 0x110000 category indices (unlisted code points are Cn)."""
    cat = bytearray(MAX_CP + 1)  # 0 = Cn
    index = {name: i for i, name in enumerate(CATEGORIES)}
    first = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip("\n").split(";")
            if len(fields) < 3:
                continue
            cp, name, gc = int(fields[0], 16), fields[1], fields[2]
            if gc not in index:
                sys.exit(f"{path}:{lineno}: unknown general category {gc}")
            if name.endswith(", First>"):
                first = cp
                continue
            if name.endswith(", Last>"):
                if first is None:
                    sys.exit(f"{path}:{lineno}: range end without start")
                for c in range(first, cp + 1):
                    cat[c] = index[gc]
                first = None
                continue
            cat[cp] = index[gc]
    return cat


def read_property(path, prop):
    """Returns the sorted, merged [first, last] ranges of code points that have binary property `prop`."""
    cps = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            body = line.split("#", 1)[0].strip()
            if not body:
                continue
            rng, name = [x.strip() for x in body.split(";")[:2]]
            if name != prop:
                continue
            if ".." in rng:
                a, b = (int(x, 16) for x in rng.split(".."))
            else:
                a = b = int(rng, 16)
            cps.update(range(a, b + 1))
    if not cps:
        sys.exit(f"{path}: no code point has property {prop}")
    ranges = []
    for c in sorted(cps):
        if ranges and ranges[-1][1] + 1 == c:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


def runs_of(cat):
    runs = []
    prev = None
    for cp in range(MAX_CP + 1):
        if cat[cp] != prev:
            runs.append((cp, cat[cp]))
            prev = cat[cp]
    return runs


# General categories in Unicode 8.0 (the HF BERT tables' version) of the code points whose category has since
# changed between classes those tables use (P*, Mn, Cc/Cf): U+166D CANADIAN SYLLABICS CHI SIGN (Po, So from
# 12.0), U+111C9 SHARADA SANDHI MARK (Po, Mn from 11.0), U+1734 HANUNOO SIGN PAMUDPOD (Mn, Mc from 14.0),
# U+1885..U+1886 MONGOLIAN LETTER ALI GALI BALUDA / THREE BALUDA (Lo, Mn from 9.0), U+A9BD JAVANESE CONSONANT
# SIGN KERET (Mc, Mn from 12.0).
BERT_CATEGORY_VERSION = (8, 0)
BERT_NORMALIZATION_VERSION = (9, 0)
BERT_CATEGORY_CHANGES = {0x166D: "Po", 0x111C9: "Po", 0x1734: "Mn", 0x1885: "Lo", 0x1886: "Lo", 0xA9BD: "Mc"}


def read_unicode_data_fields(path):
    """Returns (ccc, decomposition, lowercase): dicts by code point of the canonical combining class (non-zero
    only), the canonical decomposition mapping (a tuple; compatibility mappings are left out) and the simple
    lowercase mapping (where it differs from the code point)."""
    ccc, decomposition, lowercase = {}, {}, {}
    first = None
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.rstrip("\n").split(";")
            if len(fields) < 15:
                continue
            cp, name = int(fields[0], 16), fields[1]
            if name.endswith(", First>"):
                first = cp
            if name.endswith(", Last>"):
                cps = range(first, cp + 1)
            elif name.endswith(", First>"):
                continue
            else:
                cps = (cp,)
            for c in cps:
                if fields[3] != "0":
                    ccc[c] = int(fields[3])
                if fields[5] and not fields[5].startswith("<"):
                    decomposition[c] = tuple(int(x, 16) for x in fields[5].split())
                    if not 1 <= len(decomposition[c]) <= 2:
                        sys.exit(f"{path}:{lineno}: canonical decomposition of length {len(decomposition[c])}")
                if fields[13]:
                    lowercase[c] = int(fields[13], 16)
    return ccc, decomposition, lowercase


def read_special_lowercase(path, simple):
    """Unconditional lowercase mappings of SpecialCasing.txt that differ from the simple mapping."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            body = line.split("#", 1)[0].strip()
            if not body:
                continue
            fields = [x.strip() for x in body.split(";")]
            if len(fields) > 4 and fields[4]:
                continue  # a condition (Final_Sigma, a language): char::to_lowercase ignores these
            cp = int(fields[0], 16)
            lower = tuple(int(x, 16) for x in fields[1].split())
            if lower != (simple.get(cp, cp),):
                if len(lower) > 3:
                    sys.exit(f"{path}: lowercase of U+{cp:04X} longer than 3")
                out[cp] = lower
    return out


def read_ages(path):
    """Returns a list of 0x110000 (major, minor) tuples, None where unassigned."""
    age = [None] * (MAX_CP + 1)
    with open(path, encoding="utf-8") as f:
        for line in f:
            body = line.split("#", 1)[0].strip()
            if not body:
                continue
            rng, version = [x.strip() for x in body.split(";")[:2]]
            a, _, b = rng.partition("..")
            a = int(a, 16)
            b = int(b, 16) if b else a
            v = tuple(int(x) for x in version.split("."))
            for c in range(a, b + 1):
                age[c] = v
    return age


def merge_ranges(cps):
    ranges = []
    for c in sorted(cps):
        if ranges and ranges[-1][1] + 1 == c:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


def lowercase_ranges(lowercase):
    """Groups the simple lowercase mappings into runs (first, last, delta, stride): every `stride`-th code point
    from first to last maps to itself + delta, and nothing in between maps."""
    runs = []
    for cp in sorted(lowercase):
        delta = lowercase[cp] - cp
        if runs:
            first, last, d, stride = runs[-1]
            gap = cp - last
            if d == delta and gap in (1, 2) and (stride == 0 or gap == stride):
                runs[-1] = [first, cp, d, gap]
                continue
        runs.append([cp, cp, delta, 0])
    return [(a, b, d, st or 1) for a, b, d, st in runs]


def wrap(items, indent="    ", width=120):
    lines, line = [], indent
    for it in items:
        piece = it + ","
        if len(line) + len(piece) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += piece + " "
    if line.strip():
        lines.append(line.rstrip())
    return "\n".join(lines)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ucd", default="/usr/share/unicode")
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "..", "include", "slim", "text",
                                                                    "unicode_tables.hpp")))
    args = ap.parse_args()

    unicode_data = os.path.join(args.ucd, "UnicodeData.txt")
    prop_list = os.path.join(args.ucd, "PropList.txt")
    derived = os.path.join(args.ucd, "DerivedCoreProperties.txt")
    version = read_version(derived)
    if read_version(prop_list) != version:
        sys.exit("PropList.txt and DerivedCoreProperties.txt are from different Unicode versions")

    cat = read_general_categories(unicode_data)
    runs = runs_of(cat)
    white_space = read_property(prop_list, "White_Space")
    alphabetic = read_property(derived, "Alphabetic")

    for name in ("DerivedNormalizationProps.txt", "DerivedAge.txt", "SpecialCasing.txt"):
        if read_version(os.path.join(args.ucd, name)) != version:
            sys.exit(f"{name} and DerivedCoreProperties.txt are from different Unicode versions")
    ccc, decomposition, lowercase = read_unicode_data_fields(unicode_data)
    special_lower = read_special_lowercase(os.path.join(args.ucd, "SpecialCasing.txt"), lowercase)
    exclusions = set()
    for a, b in read_property(os.path.join(args.ucd, "DerivedNormalizationProps.txt"), "Full_Composition_Exclusion"):
        exclusions.update(range(a, b + 1))
    age = read_ages(os.path.join(args.ucd, "DerivedAge.txt"))
    ccc_runs = runs_of([ccc.get(c, 0) for c in range(MAX_CP + 1)])
    decompositions = sorted(decomposition.items())
    compositions = sorted((pair, c) for c, pair in decomposition.items() if len(pair) == 2 and c not in exclusions)
    for (a, b), c in compositions:
        if ccc.get(a, 0) != 0:
            sys.exit(f"U+{c:04X}: a primary composite whose first part is not a starter")
    lower_runs = lowercase_ranges(lowercase)

    def old_category(c):
        if c in BERT_CATEGORY_CHANGES:
            return BERT_CATEGORY_CHANGES[c]
        return CATEGORIES[cat[c]] if age[c] is not None and age[c] <= BERT_CATEGORY_VERSION else "Cn"

    bert_control = merge_ranges(c for c in range(MAX_CP + 1) if old_category(c) in ("Cc", "Cf"))
    bert_punctuation = merge_ranges(c for c in range(MAX_CP + 1) if old_category(c).startswith("P"))
    bert_nonspacing = merge_ranges(c for c in range(MAX_CP + 1) if old_category(c) == "Mn")
    bert_unnormalized = merge_ranges(c for c in set(ccc) | set(decomposition)
                                     if age[c] is not None and age[c] > BERT_NORMALIZATION_VERSION)

    out = []
    out.append("// slim — Unicode character tables. GENERATED by tools/unicode/gen_tables.py: do not edit by hand.")
    out.append(f"// Source: the Unicode Character Database, version {version} (Debian package unicode-data):")
    out.append("// UnicodeData.txt (general category), PropList.txt (White_Space), DerivedCoreProperties.txt (Alphabetic).")
    out.append("// Normalisation and case: UnicodeData.txt, SpecialCasing.txt, DerivedNormalizationProps.txt; the HF BERT tables")
    out.append("// also DerivedAge.txt (tools/unicode/gen_tables.py explains them).")
    out.append("// Unicode data © Unicode, Inc., under the Unicode License (https://www.unicode.org/license.txt).")
    out.append("// SPDX-License-Identifier: Apache-2.0 AND Unicode-DFS-2016")
    out.append("#pragma once")
    out.append("")
    out.append("#include <cstdint>")
    out.append("#include <string_view>")
    out.append("")
    out.append("namespace slim::text::unicode::tables {")
    out.append("")
    out.append("// clang-format off")
    out.append("/// Version of the Unicode Character Database these tables were generated from.")
    out.append(f'inline constexpr std::string_view unicode_version = "{version}";')
    out.append("")
    out.append("/// General category of U+0000..U+00FF, indexed by code point (values as `general_category`).")
    out.append("inline constexpr std::uint8_t latin1_category[256] = {")
    out.append(wrap([str(cat[c]) for c in range(256)]))
    out.append("};")
    out.append("")
    out.append(f"/// General category runs over all of U+0000..U+10FFFF ({len(runs)} runs): entry = first << 5 | category;")
    out.append("/// a run extends to the next entry's first code point. Unassigned code points are Cn (0).")
    out.append(f"inline constexpr std::uint32_t category_runs[{len(runs)}] = {{")
    out.append(wrap([f"0x{(cp << 5) | c:x}" for cp, c in runs]))
    out.append("};")
    out.append("")
    for name, ranges, what in (("white_space", white_space, "White_Space (PropList.txt)"),
                               ("alphabetic", alphabetic, "Alphabetic (DerivedCoreProperties.txt)")):
        out.append(f"/// Code points with property {what}: sorted, disjoint [first, last] pairs, flattened.")
        out.append(f"inline constexpr std::uint32_t {name}_ranges[{2 * len(ranges)}] = {{")
        out.append(wrap([f"0x{a:x}, 0x{b:x}" for a, b in ranges]))
        out.append("};")
        out.append("")
    out.append(f"/// Canonical combining class runs over all of U+0000..U+10FFFF ({len(ccc_runs)} runs): entry = first << 8 | class;")
    out.append("/// a run extends to the next entry's first code point.")
    out.append(f"inline constexpr std::uint32_t combining_class_runs[{len(ccc_runs)}] = {{")
    out.append(wrap([f"0x{(cp << 8) | c:x}" for cp, c in ccc_runs]))
    out.append("};")
    out.append("")
    out.append("/// Canonical decomposition mappings, one level (decompose the parts again for the full decomposition),")
    out.append("/// sorted: entry = code point << 42 | first << 21 | second (second = 0 for a one-character mapping).")
    out.append("/// Hangul syllables decompose algorithmically and are not listed.")
    out.append(f"inline constexpr std::uint64_t canonical_decompositions[{len(decompositions)}] = {{")
    out.append(wrap([f"0x{(c << 42) | (m[0] << 21) | (m[1] if len(m) > 1 else 0):x}" for c, m in decompositions]))
    out.append("};")
    out.append("")
    out.append("/// Primary composites (two-character canonical mappings less Full_Composition_Exclusion), sorted:")
    out.append("/// entry = first << 42 | second << 21 | composite. Hangul syllables compose algorithmically.")
    out.append(f"inline constexpr std::uint64_t canonical_compositions[{len(compositions)}] = {{")
    out.append(wrap([f"0x{(a << 42) | (b << 21) | c:x}" for (a, b), c in compositions]))
    out.append("};")
    out.append("")
    out.append("/// A run of case mappings: every `stride`-th code point from `first` to `last` maps to itself + `delta`.")
    out.append("struct case_run {")
    out.append("  std::uint32_t first, last;")
    out.append("  std::int32_t delta;")
    out.append("  std::uint32_t stride;")
    out.append("};")
    out.append(f"/// Simple lowercase mappings (UnicodeData.txt), {len(lowercase)} code points in {len(lower_runs)} runs, sorted.")
    out.append(f"inline constexpr case_run lowercase_runs[{len(lower_runs)}] = {{")
    out.append(wrap([f"{{0x{a:x}, 0x{b:x}, {d}, {st}}}" for a, b, d, st in lower_runs]))
    out.append("};")
    out.append("")
    out.append("/// A multi-character case mapping; unused slots are 0.")
    out.append("struct special_case {")
    out.append("  std::uint32_t code_point;")
    out.append("  std::uint32_t mapping[3];")
    out.append("};")
    out.append("/// Unconditional lowercase mappings of SpecialCasing.txt that replace the simple mapping, sorted.")
    out.append(f"inline constexpr special_case special_lowercase[{len(special_lower)}] = {{")
    out.append(wrap([f"{{0x{c:x}, {{{', '.join(f'0x{x:x}' for x in (m + (0, 0))[:3])}}}}}" for c, m in sorted(special_lower.items())]))
    out.append("};")
    out.append("")
    bv = ".".join(map(str, BERT_CATEGORY_VERSION))
    nv = ".".join(map(str, BERT_NORMALIZATION_VERSION))
    out.append("/// Unicode versions of HF tokenizers' BERT character classes and of its normaliser (see gen_tables.py).")
    out.append(f'inline constexpr std::string_view bert_category_version = "{bv}";')
    out.append(f'inline constexpr std::string_view bert_normalization_version = "{nv}";')
    out.append("")
    for name, ranges, what in (
            ("bert_control", bert_control, f"general category Cc or Cf in Unicode {bv}"),
            ("bert_punctuation", bert_punctuation, f"general category P* in Unicode {bv}"),
            ("bert_nonspacing_mark", bert_nonspacing, f"general category Mn in Unicode {bv}"),
            ("bert_unnormalized", bert_unnormalized,
             f"a combining class or canonical decomposition, assigned after Unicode {nv}")):
        out.append(f"/// HF BERT table: code points with {what}:")
        out.append("/// sorted, disjoint [first, last] pairs, flattened.")
        out.append(f"inline constexpr std::uint32_t {name}_ranges[{2 * len(ranges)}] = {{")
        out.append(wrap([f"0x{a:x}, 0x{b:x}" for a, b in ranges]))
        out.append("};")
        out.append("")
    out.append("// clang-format on")
    out.append("")
    out.append("}  // namespace slim::text::unicode::tables")
    text = "\n".join(out) + "\n"
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{args.out}: Unicode {version}, {len(runs)} category runs, {len(white_space)} White_Space ranges, "
          f"{len(alphabetic)} Alphabetic ranges, {len(ccc_runs)} combining class runs, {len(decompositions)} "
          f"decompositions, {len(compositions)} compositions, {len(lower_runs)} lowercase runs, "
          f"{len(bert_punctuation)}/{len(bert_nonspacing)} BERT punctuation/Mn ranges")


if __name__ == "__main__":
    main()
