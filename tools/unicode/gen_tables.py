#!/usr/bin/env python3
"""Generates include/slim/text/unicode_tables.hpp from the Unicode Character Database.

Input: the UCD text files as Debian's `unicode-data` package installs them (apt-get install unicode-data;
/usr/share/unicode/): UnicodeData.txt (general category), PropList.txt (White_Space) and
DerivedCoreProperties.txt (Alphabetic). The Unicode version is read from the files' own headers and written
into the generated header; the committed header was made from unicode-data 15.0.0-1 (Unicode 15.0.0).

Usage: tools/unicode/gen_tables.py [--ucd /usr/share/unicode] [--out include/slim/text/unicode_tables.hpp]
Needs only the Python standard library. The output is deterministic: rerunning on the same data gives the
same bytes, so a diff after regeneration shows exactly what a Unicode update changed.
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

    out = []
    out.append("// slim — Unicode character tables. GENERATED by tools/unicode/gen_tables.py: do not edit by hand.")
    out.append(f"// Source: the Unicode Character Database, version {version} (Debian package unicode-data):")
    out.append("// UnicodeData.txt (general category), PropList.txt (White_Space), DerivedCoreProperties.txt (Alphabetic).")
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
    out.append("// clang-format on")
    out.append("")
    out.append("}  // namespace slim::text::unicode::tables")
    text = "\n".join(out) + "\n"
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{args.out}: Unicode {version}, {len(runs)} category runs, {len(white_space)} White_Space ranges, "
          f"{len(alphabetic)} Alphabetic ranges")


if __name__ == "__main__":
    main()
