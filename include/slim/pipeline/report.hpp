// slim — the pipeline's results as a terminal table: every arm of every backbone (mean ± std over seeds), the
// paired differences that decide whether SLIM helps (same seed, same negatives), the sparsity groups, the
// student's quality and the cost of teacher calls against student generation.
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "slim/metrics/statistics.hpp"
#include "slim/pipeline/slim_pipeline.hpp"

namespace slim::pipeline {

namespace detail {

inline std::string fmt(const char* f, double a) {
  char b[64];
  std::snprintf(b, sizeof b, f, a);
  return b;
}
inline std::string pm(const metrics::summary& s) {
  if (s.n == 0) return "-";
  return fmt("%.4f", s.mean) + (s.n > 1 ? " ± " + fmt("%.4f", s.std) : std::string());
}
inline std::string pad(std::string s, std::size_t w) {
  // display width: count UTF-8 lead bytes only
  std::size_t n = 0;
  for (const unsigned char c : s) n += (c & 0xC0) != 0x80;
  if (n < w) s.append(w - n, ' ');
  return s;
}

}  // namespace detail

/// Values of one metric for (backbone, arm), in seed order. `what`: "sampled:ndcg@10", "full:ndcg@10", "efd",
/// "epc", or "group:g" (sampled NDCG@10 of sparsity group g).
inline std::vector<double> values_of(const pipeline_result& r, std::string_view backbone, std::string_view arm,
                                     std::string_view what) {
  std::vector<double> v;
  for (const arm_run& a : r.runs) {
    if (a.backbone != backbone || a.arm != arm) continue;
    if (what.starts_with("sampled:"))
      v.push_back(a.sampled.at(std::string(what.substr(8))));
    else if (what.starts_with("full:"))
      v.push_back(a.full.at(std::string(what.substr(5))));
    else if (what == "efd")
      v.push_back(a.efd);
    else if (what == "epc")
      v.push_back(a.epc);
    else if (what.starts_with("group:"))
      v.push_back(a.groups.at(static_cast<std::size_t>(what[6] - '0')));
  }
  return v;
}

/// Paired difference (arm a − arm b) of a metric over seeds.
inline metrics::paired_difference paired(const pipeline_result& r, std::string_view backbone, std::string_view a,
                                         std::string_view b, std::string_view what = "sampled:ndcg@10") {
  const auto va = values_of(r, backbone, a, what), vb = values_of(r, backbone, b, what);
  return metrics::compare_paired(va, vb);
}

/// The whole report as text.
inline std::string results_table(const pipeline_result& r, const std::vector<std::string>& backbones,
                                 const std::vector<std::string>& arms) {
  using detail::pad;
  using detail::pm;
  std::string out;
  const pipeline_summary& s = r.summary;
  std::size_t seeds = 0;
  for (const arm_run& a : r.runs)
    if (a.backbone == backbones.front() && a.arm == arms.front()) ++seeds;
  out += "\nSLIM on " + std::to_string(s.users) + " users, " + std::to_string(s.items) + " items, " +
         std::to_string(s.interactions) + " interactions; test metrics, mean ± std over " + std::to_string(seeds) +
         " seeds (sampled: 100 negatives; full: every item, history excluded)\n\n";
  const std::vector<std::pair<std::string, std::string>> cols = {
      {"NDCG@10", "sampled:ndcg@10"},   {"HR@10", "sampled:hr@10"}, {"HR@20", "sampled:hr@20"},
      {"full NDCG@10", "full:ndcg@10"}, {"EFD@10", "efd"},          {"EPC@10", "epc"}};
  const std::size_t w0 = 26, w = 19;
  out += pad("model", w0);
  for (const auto& c : cols) out += pad(c.first, w);
  out += "\n";
  for (const auto& bb : backbones) {
    for (const auto& arm : arms) {
      const std::string label = arm == "backbone"      ? bb
                                : arm == "shuffled"    ? bb + " shuffled (ctl)"
                                : arm == "undistilled" ? bb + " B=0 (ctl)"
                                : arm == "+teacher"    ? bb + " +teacher (SLIM-)"
                                                       : bb + " " + arm;
      out += pad(label, w0);
      for (const auto& c : cols) out += pad(pm(metrics::summarize(values_of(r, bb, arm, c.second))), w);
      out += "\n";
    }
  }
  out += "\nPaired differences of sampled NDCG@10 (same seed, same negatives): mean ± std, z = mean / std\n";
  for (const auto& bb : backbones) {
    std::vector<std::pair<std::string, std::string>> pairs = {{"+SLIM", "backbone"},    {"+SLIM", "+text"},
                                                              {"shuffled", "backbone"}, {"undistilled", "backbone"},
                                                              {"+SLIM", "shuffled"},    {"+SLIM", "undistilled"}};
    if (std::find(arms.begin(), arms.end(), "text-matching") != arms.end()) {
      pairs.emplace_back("text-matching", "backbone");
      pairs.emplace_back("text-matching", "+text");
    }
    if (std::find(arms.begin(), arms.end(), "+teacher") != arms.end()) {
      pairs.emplace_back("+teacher", "backbone");
      pairs.emplace_back("+SLIM", "+teacher");
    }
    for (const auto& [a, b] : pairs) {
      const auto d = paired(r, bb, a, b);
      out += "  " + pad(bb + ": " + a + " − " + b, 34);
      if (!(d.std >= 0)) {  // one seed: no spread to compare with
        out += detail::fmt("%+.4f", d.mean) + " (one seed: no std, no z)\n";
        continue;
      }
      const double z = d.std > 0 ? d.mean / d.std : (d.mean == 0 ? 0.0 : INFINITY);
      out += pad(detail::fmt("%+.4f", d.mean) + " ± " + detail::fmt("%.4f", d.std), 22) +
             "z = " + detail::fmt("%+.1f", z) + (z > 3 ? "  (> 3 std)" : "") + "\n";
    }
  }
  out += "\nSparsity groups (users by training-history length, sparsest first), sampled NDCG@10:\n";
  out += pad("", w0);
  for (std::size_t g = 0; g < s.group_min.size(); ++g)
    out += pad("G" + std::to_string(g + 1) + " [" + std::to_string(s.group_min[g]) + "-" +
                   std::to_string(s.group_max[g]) + "]",
               14);
  out += "\n";
  for (const auto& bb : backbones)
    for (const auto& arm : {std::string("backbone"), std::string("+text"), std::string("+SLIM")}) {
      out += pad(bb + (arm == "backbone" ? std::string() : " " + arm), w0);
      for (std::size_t g = 0; g < s.group_min.size(); ++g) {
        const auto v = values_of(r, bb, arm, "group:" + std::to_string(g));
        out += pad(detail::fmt("%.4f", metrics::summarize(v).mean), 14);
      }
      out += "\n";
    }
  out += "\nStudent: held-out rationale NLL " + detail::fmt("%.3f", s.held_out_nll) +
         " nats/token (LoRA B = 0: " + detail::fmt("%.3f", s.held_out_nll_undistilled) + ") on " +
         std::to_string(s.held_out_users) +
         " users; rationales parsed into 3 steps: " + detail::fmt("%.1f", 100 * s.parse_rate) +
         "% (B = 0: " + detail::fmt("%.1f", 100 * s.parse_rate_undistilled) + "%)\n";
  out += "Cost: teacher " + std::to_string(s.teach_users) + " rationales, " + std::to_string(s.teacher_prompt_tokens) +
         " prompt + " + std::to_string(s.teacher_completion_tokens) + " completion tokens = $" +
         detail::fmt("%.4f", s.teacher_dollars) + " at the configured prices; student " +
         detail::fmt("%.4f", s.student_seconds_per_rationale) + " s per rationale batched, " +
         detail::fmt("%.4f", s.student_seconds_single) + " s one at a time (this machine)" +
         (s.batch_mismatches ? "; " + std::to_string(s.batch_mismatches) + " of 32 differ between batched and single"
                             : "") +
         "\n";
  out += "Leakage guard: " + std::to_string(s.teacher_mentions_removed) + " mentions of held-out items removed from " +
         std::to_string(s.teacher_users_with_mentions) + " of " + std::to_string(s.teach_users) +
         " teacher rationales, " + std::to_string(s.student_mentions_removed) + " from " +
         std::to_string(s.student_users_with_mentions) + " student rationales\n";
  out += "Stages (s):";
  for (const auto& [k, v] : s.stage_seconds)
    out += " " + k + " " + detail::fmt("%.1f", v) +
           (s.stage_resumed.count(k) && s.stage_resumed.at(k) ? " (resumed)" : "");
  out += "\n";
  return out;
}

}  // namespace slim::pipeline
