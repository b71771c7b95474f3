#!/usr/bin/env bash
# Runs every slim libFuzzer target (or the ones named) for SECONDS each, one after another, and prints the
# exec counts. Usage:
#   fuzz/run_all.sh SECONDS [TARGET...]        e.g. fuzz/run_all.sh 600   or   fuzz/run_all.sh 60 encode
# Environment:
#   SLIM_FUZZ_WORK  work folder (default /tmp/slim_fuzz): bin/ (built targets), corpus/<target>/ (kept between
#                   runs, seeded from tests/data/text and tests/data/io each time), artifacts/<target>/
#                   (crash-*, leak-*, ...), logs/<target>.log
#   SLIM_FUZZ_BIN   a folder with prebuilt fuzz_* programs (a CMake build with -DSLIM_BUILD_FUZZERS=ON puts
#                   them in <build>/fuzz); default: build them here with $CXX (default clang++)
#   SLIM_DATA_DIR   the shared data folder; fuzz_encode then also runs GPT-2's and LLaMA-2's own tokenizers
#   FUZZ_JOBS       parallel builds (default 2)
# Exit status 1 when any target found something (the table says which; the artifact reproduces it:
#   $SLIM_FUZZ_WORK/bin/fuzz_<target> <artifact>).
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
seconds=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
work=${SLIM_FUZZ_WORK:-/tmp/slim_fuzz}
data=$root/tests/data/text
all_targets=(tokenizer_json gpt2_files sentencepiece_model wordpiece_vocab encode bpe_trainer safetensors)
targets=("${@:-${all_targets[@]}}")
mkdir -p "$work"/{bin,corpus,artifacts,logs}

# ---- build -----------------------------------------------------------------------------------------------
bin=${SLIM_FUZZ_BIN:-$work/bin}
if [[ -z ${SLIM_FUZZ_BIN:-} ]]; then
  cxx=${CXX:-clang++}
  flags=(-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
         -I"$root/include" -DSLIM_FUZZ_FIXTURE_DIR="\"$data\"")
  pids=()
  for t in "${targets[@]}"; do
    src=$root/fuzz/fuzz_$t.cpp
    out=$bin/fuzz_$t
    # rebuild when the target, its helpers or any library header is newer than the program
    newer=$(find "$src" "$root/fuzz/fuzz_support.hpp" "$root/include/slim" -newer "$out" -print -quit 2>/dev/null || true)
    if [[ -x $out && -z $newer ]]; then
      continue
    fi
    echo "building fuzz_$t"
    "$cxx" "${flags[@]}" "$src" -o "$out" &
    pids+=($!)
    if (( ${#pids[@]} >= ${FUZZ_JOBS:-2} )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
  done
  for p in "${pids[@]}"; do wait "$p"; done
fi

# ---- seeds (copied from the fixtures at run time; nothing big is committed) ----------------------------
seed() {  # seed TARGET NAME < bytes
  cat > "$work/corpus/$1/seed_$2"
}
for t in "${targets[@]}"; do
  c=$work/corpus/$t
  mkdir -p "$c" "$work/artifacts/$t"
  case $t in
    tokenizer_json)
      # the fixtures cut down to their first ids (a few KB each: -max_len is 8 KB for this target), plus the
      # whole files (truncated by libFuzzer to -max_len; they still seed the JSON structure)
      python3 - "$data" "$c" <<'PY'
import json, os, sys
src, out = sys.argv[1], sys.argv[2]
for name in ["llama3_bpe.json", "qwen2_bpe.json", "added_bpe.json", "edge_bpe.json", "unk_bpe.json",
             "trainer_gpt2_hf.json", "trainer_llama3_hf.json", "wordpiece_small.json"]:
    j = json.load(open(os.path.join(src, name), encoding="utf-8"))
    keep = 120 if j["model"]["type"] == "WordPiece" else 300
    m = j["model"]
    m["vocab"] = {k: v for k, v in m["vocab"].items() if v < keep}
    if "merges" in m:
        def parts(x):
            return x if isinstance(x, list) else x.split(" ")
        m["merges"] = [x for x in m["merges"] if all(p in m["vocab"] for p in parts(x))
                       and "".join(parts(x)) in m["vocab"]][:40]
    j["added_tokens"] = [t for t in j.get("added_tokens", []) if t["id"] < keep]
    with open(os.path.join(out, "seed_small_" + name), "w", encoding="utf-8") as f:
        json.dump(j, f, ensure_ascii=False, separators=(",", ":"))
PY
      for f in "$data"/*_bpe.json "$data"/trainer_*_hf.json "$data"/wordpiece_small.json; do
        cp "$f" "$c/seed_$(basename "$f")"
      done ;;
    gpt2_files)
      { cat "$data/trainer_gpt2/encoder.json"; printf '\n@@\n'; cat "$data/trainer_gpt2/vocab.bpe"; } |
        seed "$t" trainer
      printf '{"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}\n@@\n#version: 0.2\na b\n' | seed "$t" tiny ;;
    sentencepiece_model)
      for f in "$data"/*.model; do cp "$f" "$c/seed_$(basename "$f")"; done ;;
    wordpiece_vocab)
      for b in 00 01 03 09 11; do { printf "\\x$b"; cat "$data/wordpiece_vocab.txt"; } | seed "$t" "vocab_$b"; done
      { printf '\x01'; printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n##lo\nworld\n'; } | seed "$t" tiny ;;
    safetensors)
      # the committed reference-written file plus small files made here: every dtype, metadata, a scalar,
      # an empty tensor, an odd-offset F32 (no zero-copy view), several tensors of mixed sizes
      cp "$root/tests/data/io/python_small.safetensors" "$c/seed_python_small.safetensors"
      python3 - "$c" <<'PY'
import json, struct, sys
out = sys.argv[1]
def save(name, tensors, meta=None, pad=True):
    header, data = {}, b""
    if meta is not None:
        header["__metadata__"] = meta
    for n, (dt, shape, raw) in tensors.items():
        header[n] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    open(f"{out}/seed_{name}", "wb").write(struct.pack("<Q", len(h)) + h + data)
save("every_dtype", {"f64": ("F64", [1], struct.pack("<d", 1.5)), "f32": ("F32", [2], struct.pack("<2f", 1, -2)),
                     "f16": ("F16", [2], b"\x00\x3c\x00\xc0"), "bf16": ("BF16", [2], b"\x80\x3f\x00\xc0"),
                     "i64": ("I64", [1], struct.pack("<q", -5)), "i32": ("I32", [1], struct.pack("<i", 7)),
                     "i16": ("I16", [1], struct.pack("<h", -3)), "i8": ("I8", [2], b"\x01\xff"),
                     "u8": ("U8", [1], b"\x09"), "bool": ("BOOL", [3], b"\x00\x01\x00")},
     meta={"format": "pt"})
save("scalar_empty", {"s": ("F32", [], struct.pack("<f", 3)), "e": ("F16", [0, 4], b"")}, meta={})
save("odd_offset", {"a": ("U8", [1], b"\x07"), "b": ("F32", [1], struct.pack("<f", 1))}, pad=False)
save("matrix", {"w": ("F32", [2, 3], struct.pack("<6f", *range(6))), "b": ("BF16", [3], b"\x00\x00" * 3)})
PY
      ;;
    encode|bpe_trainer)
      # one seed per parity-corpus string (every 4th), as raw bytes; the trainer's seeds get a settings prefix
      python3 - "$data/corpus.jsonl" "$c" "$t" <<'PY'
import json, sys
src, out, target = sys.argv[1], sys.argv[2], sys.argv[3]
texts = [json.loads(l)["text"] for l in open(src, encoding="utf-8") if l.strip()]
for i, t in enumerate(texts[::4]):
    b = t.encode("utf-8")
    if target == "bpe_trainer":
        b = bytes([i % 256, (i * 37) % 256]) + b + b"\n" + b
    open(f"{out}/seed_corpus_{i:04d}", "wb").write(b)
PY
      ;;
  esac
done

# ---- run -----------------------------------------------------------------------------------------------
status=0
printf '%-20s %12s %10s %8s %8s  %s\n' target execs exec/s corpus rss_mb result
for t in "${targets[@]}"; do
  log=$work/logs/$t.log
  extra=()
  [[ -f $root/fuzz/$t.dict ]] && extra+=(-dict="$root/fuzz/$t.dict")
  [[ $t == tokenizer_json || $t == gpt2_files ]] && extra+=(-max_len=8192)
  set +e
  "$bin/fuzz_$t" "$work/corpus/$t" "${extra[@]}" -max_total_time="$seconds" -print_final_stats=1 -timeout=30 \
    -rss_limit_mb=4096 -artifact_prefix="$work/artifacts/$t/" > "$log" 2>&1
  rc=$?
  set -e
  stat() { grep -m1 "^stat::$1:" "$log" | awk '{print $2}' || true; }
  execs=$(stat number_of_executed_units); speed=$(stat average_exec_per_sec); rss=$(stat peak_rss_mb)
  units=$(find "$work/corpus/$t" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    result=clean
  else
    status=1
    artifact=$(grep -o "Test unit written to [^ ]*" "$log" | tail -1 | sed 's/Test unit written to //' || true)
    result="FOUND (exit $rc): ${artifact:-see $log}"
  fi
  printf '%-20s %12s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${speed:-?}" "$units" "${rss:-?}" "$result"
done
exit $status
