// slim — the pipeline's chart: sampled NDCG@10 of every arm of every backbone as grouped bars (mean over seeds,
// whiskers ± one standard deviation), written as a PNG with slim's own writer (io/png.hpp).
// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "slim/io/png.hpp"
#include "slim/metrics/statistics.hpp"
#include "slim/pipeline/report.hpp"

namespace slim::pipeline {

/// Writes the chart of `r` to `path` (atomically). Backbones are groups, arms are bars in `arms` order.
inline void write_chart(const std::string& path, const pipeline_result& r, const std::vector<std::string>& backbones,
                        const std::vector<std::string>& arms, const std::string& metric = "sampled:ndcg@10") {
  constexpr int width = 900, height = 480, left = 70, right = 20, top = 50, bottom = 110;
  io::canvas c(width, height);
  const io::rgb ink{40, 40, 40}, grid{225, 225, 225};
  const io::rgb colours[] = {{120, 120, 120}, {70, 130, 180},  {214, 96, 40},
                             {170, 170, 210}, {240, 190, 150}, {60, 160, 90}};
  constexpr std::size_t n_colours = sizeof colours / sizeof colours[0];
  double hi = 0;
  std::vector<std::vector<metrics::summary>> s(backbones.size());
  for (std::size_t b = 0; b < backbones.size(); ++b)
    for (const auto& a : arms) {
      s[b].push_back(metrics::summarize(values_of(r, backbones[b], a, metric)));
      const auto& x = s[b].back();
      if (x.n > 0) hi = std::max(hi, x.mean + (x.n > 1 ? x.std : 0.0));
    }
  if (hi <= 0) hi = 1;
  // a round axis maximum: 1, 2 or 5 times a power of ten, at least 10% above the tallest whisker
  const double want = hi * 1.1, p = std::pow(10.0, std::floor(std::log10(want)));
  const double top_value = want <= p ? p : want <= 2 * p ? 2 * p : want <= 5 * p ? 5 * p : 10 * p;
  const int plot_h = height - top - bottom, plot_w = width - left - right;
  auto y_of = [&](double v) { return top + plot_h - static_cast<int>(std::lround(v / top_value * plot_h)); };
  for (int k = 0; k <= 5; ++k) {
    const double v = top_value * k / 5;
    const int y = y_of(v);
    c.hline(left, width - right, y, grid);
    char label[32];
    std::snprintf(label, sizeof label, "%.3f", v);
    c.text(left - 8 - io::canvas::text_width(label), y - 3, label, ink);
  }
  c.vline(left, top, top + plot_h, ink);
  c.hline(left, width - right, top + plot_h, ink);
  std::string title = "NDCG@10 (" + std::string(metric.substr(0, metric.find(':'))) + "), mean +- std over seeds";
  c.text(left, 15, title, ink, 2);
  const int groups = static_cast<int>(backbones.size()), bars = static_cast<int>(arms.size());
  const int group_w = plot_w / std::max(1, groups), bar_w = std::max(4, (group_w - 40) / std::max(1, bars));
  for (int b = 0; b < groups; ++b) {
    const int x0 = left + b * group_w + 20;
    for (int a = 0; a < bars; ++a) {
      const auto& x = s[static_cast<std::size_t>(b)][static_cast<std::size_t>(a)];
      if (x.n == 0) continue;
      const int bx = x0 + a * bar_w;
      c.fill(bx + 2, y_of(x.mean), bx + bar_w - 2, top + plot_h, colours[a % n_colours]);
      if (x.n > 1) {
        const int mid = bx + bar_w / 2;
        c.vline(mid, y_of(x.mean - x.std), y_of(x.mean + x.std), ink);
        c.hline(mid - 4, mid + 4, y_of(x.mean + x.std), ink);
        c.hline(mid - 4, mid + 4, y_of(x.mean - x.std), ink);
      }
    }
    const std::string& name = backbones[static_cast<std::size_t>(b)];
    c.text(x0 + (bars * bar_w - io::canvas::text_width(name, 2)) / 2, top + plot_h + 10, name, ink, 2);
  }
  int lx = left;
  for (int a = 0; a < bars; ++a) {
    const int ly = height - 45;
    c.fill(lx, ly, lx + 14, ly + 14, colours[a % n_colours]);
    lx += 20 + c.text(lx + 20, ly + 4, arms[static_cast<std::size_t>(a)], ink) + 20;
  }
  c.save(path);
}

}  // namespace slim::pipeline
