// Tests of the synthetic world (slim/synth/world.hpp), its oracle teacher (slim/synth/oracle_teacher.hpp,
// slim/distill/oracle_teacher.hpp) and the leakage guard (slim/distill/leakage.hpp).
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "slim/distill/leakage.hpp"
#include "slim/distill/oracle_teacher.hpp"
#include "slim/prompt/rationale.hpp"
#include "slim/rec/detail/validate.hpp"
#include "slim/rec/split.hpp"
#include "slim/synth/oracle_teacher.hpp"
#include "slim/synth/world.hpp"

using namespace slim;

namespace {

prompt::title_catalogue catalogue_of(const synth::world& w) {
  prompt::title_catalogue c;
  for (rec::item_id i = 1; i <= w.data.num_items; ++i) c.add(i, w.data.items[static_cast<std::size_t>(i)].title);
  return c;
}

template <class T, class U>
bool contains(const std::vector<T>& v, U x) {
  return std::find(v.begin(), v.end(), static_cast<T>(x)) != v.end();
}

/// Categories whose name occurs in `text`.
std::vector<index_t> named_categories(const synth::world& w, std::string_view text) {
  std::vector<index_t> out;
  for (index_t c = 0; c < static_cast<index_t>(w.category_names.size()); ++c)
    if (text.find(w.category_names[static_cast<std::size_t>(c)]) != std::string_view::npos) out.push_back(c);
  return out;
}

const synth::world& default_world() {
  static const synth::world w = synth::make_world(synth::world_config{});
  return w;
}

}  // namespace

TEST_CASE("world: the same seed gives the same world, another seed another", "[synth]") {
  const auto a = synth::make_world(synth::world_config::tiny(5));
  const auto b = synth::make_world(synth::world_config::tiny(5));
  const auto c = synth::make_world(synth::world_config::tiny(6));
  CHECK(a.data.sequences == b.data.sequences);
  CHECK(a.drift_at == b.drift_at);
  CHECK(a.tastes_before == b.tastes_before);
  CHECK(a.tastes_after == b.tastes_after);
  bool same_text = true;
  for (std::size_t i = 1; i < a.data.items.size(); ++i)
    same_text =
        same_text && a.data.items[i].title == b.data.items[i].title && a.data.items[i].text == b.data.items[i].text;
  CHECK(same_text);
  CHECK(a.data.sequences != c.data.sequences);
  CHECK(a.tastes_before != c.tastes_before);
  std::size_t same_titles = 0;
  for (std::size_t i = 1; i < a.data.items.size(); ++i) same_titles += a.data.items[i].title == c.data.items[i].title;
  CHECK(same_titles < a.data.items.size() / 4);
  // a user's draws depend on (seed, user) only: more users leave the first users' sequences unchanged
  auto more = synth::world_config::tiny(5);
  more.num_users = 90;
  const auto d = synth::make_world(more);
  CHECK(std::equal(a.data.sequences.begin(), a.data.sequences.end(), d.data.sequences.begin()));
}

TEST_CASE("world: catalogue facts, readable unique titles and item text", "[synth]") {
  const synth::world& w = default_world();
  const auto& cfg = w.config;
  REQUIRE_NOTHROW(rec::validate(w.data));
  CHECK(w.data.name == "synth");
  CHECK(w.data.num_items == cfg.num_categories * cfg.items_per_category);
  CHECK(w.data.num_users() == cfg.num_users);
  REQUIRE(w.items.size() == static_cast<std::size_t>(w.data.num_items) + 1);
  CHECK(w.tier_names == std::vector<std::string>{"budget", "mid-range", "premium"});

  // brands sell in 2-3 categories; every category has a brand and exactly items_per_category items
  for (const auto& cats : w.brand_categories) {
    CHECK(cats.size() >= 2);
    CHECK(cats.size() <= 3);
  }
  std::vector<index_t> per_category(static_cast<std::size_t>(cfg.num_categories), 0);
  double popularity = 0;
  std::set<std::string> titles;
  std::set<std::vector<std::string>> first_three;
  for (rec::item_id i = 1; i <= w.data.num_items; ++i) {
    const auto& f = w.items[static_cast<std::size_t>(i)];
    const auto& t = w.data.items[static_cast<std::size_t>(i)];
    REQUIRE(f.category >= 0);
    REQUIRE(f.category < cfg.num_categories);
    ++per_category[static_cast<std::size_t>(f.category)];
    CHECK(contains(w.brand_categories[static_cast<std::size_t>(f.brand)], f.category));
    CHECK(contains(w.category_items[static_cast<std::size_t>(f.category)], i));
    popularity += f.popularity;
    titles.insert(t.title);
    // the title names the brand first, not the category or the tier; the text names all three
    const std::string& brand = w.brand_names[static_cast<std::size_t>(f.brand)];
    CHECK(t.title.rfind(brand + " ", 0) == 0);
    CHECK(named_categories(w, t.title).empty());
    CHECK(t.title.find("budget") == std::string::npos);
    CHECK(t.text.find(w.category_names[static_cast<std::size_t>(f.category)]) != std::string::npos);
    CHECK(t.text.find("Brand: " + brand) != std::string::npos);
    CHECK(t.text.find("Price: " + w.tier_names[static_cast<std::size_t>(f.price_tier)]) != std::string::npos);
    CHECK(t.text.rfind(t.title, 0) == 0);
    std::vector<std::string> words;
    std::size_t p = 0;
    while (words.size() < 3 && p < t.title.size()) {
      const std::size_t e = std::min(t.title.find(' ', p), t.title.size());
      words.push_back(t.title.substr(p, e - p));
      p = e + 1;
    }
    first_three.insert(words);
  }
  for (const index_t n : per_category) CHECK(n == cfg.items_per_category);
  CHECK(popularity == Approx(1.0).epsilon(1e-12));
  CHECK(titles.size() == static_cast<std::size_t>(w.data.num_items));
  // (brand, adjective, noun) is unique, so no title is another's title plus a suffix
  CHECK(first_three.size() == static_cast<std::size_t>(w.data.num_items));
}

TEST_CASE("world: sequences have the configured lengths and never repeat an item", "[synth]") {
  const synth::world& w = default_world();
  std::int64_t total = 0;
  for (const auto& seq : w.data.sequences) {
    CHECK(static_cast<index_t>(seq.size()) >= w.config.min_length);
    CHECK(static_cast<index_t>(seq.size()) <= w.config.max_length);
    CHECK(std::set<rec::item_id>(seq.begin(), seq.end()).size() == seq.size());
    total += static_cast<std::int64_t>(seq.size());
  }
  // mean length (8 + 24) / 2 = 16; the mean of 1000 uniform lengths has sd sqrt((17^2 - 1) / 12 / 1000) = 0.155
  CHECK(std::abs(static_cast<double>(total) / 1000.0 - 16.0) < 4 * 0.155);
}

TEST_CASE("world: popularity skew shows in the interactions", "[synth]") {
  // share of interactions held by the 10% most interacted items, against the same world with uniform popularity
  auto top_share = [](const synth::world& w) {
    std::vector<std::int64_t> count(static_cast<std::size_t>(w.data.num_items) + 1, 0);
    for (const auto& seq : w.data.sequences)
      for (const rec::item_id i : seq) ++count[static_cast<std::size_t>(i)];
    std::sort(count.begin() + 1, count.end(), std::greater<>());
    const auto top = static_cast<std::size_t>(w.data.num_items / 10);
    std::int64_t head = 0, all = 0;
    for (std::size_t i = 1; i < count.size(); ++i) {
      all += count[i];
      if (i <= top) head += count[i];
    }
    return static_cast<double>(head) / static_cast<double>(all);
  };
  auto flat = synth::world_config{};
  flat.popularity_skew = 0;
  const double skewed = top_share(default_world()), uniform = top_share(synth::make_world(flat));
  // Zipf(1) over 480 items puts H(48)/H(480) = 0.66 of the global draws on the top 10%; the global quarter
  // alone gives 0.165 and the taste pools, weighted by popularity too, add more
  CHECK(skewed > 0.3);
  CHECK(skewed > 2.5 * uniform);
  CHECK(uniform < 0.2);  // without skew only the brand / tier boosts concentrate interactions
}

TEST_CASE("world: interactions concentrate on the taste in effect", "[synth]") {
  const synth::world& w = default_world();
  const double focus = w.config.taste_focus;
  std::vector<double> category_mass(static_cast<std::size_t>(w.config.num_categories), 0.0);
  for (std::size_t i = 1; i < w.items.size(); ++i)
    category_mass[static_cast<std::size_t>(w.items[i].category)] += w.items[i].popularity;
  std::int64_t n = 0, own = 0, other = 0;
  double global_share = 0;  // mean global-popularity mass of the taste's categories
  for (index_t u = 0; u < w.data.num_users(); ++u) {
    const auto& seq = w.data.sequences[static_cast<std::size_t>(u)];
    const auto& stranger = w.tastes_before[static_cast<std::size_t>((u + 1) % w.data.num_users())];
    for (std::size_t t = 0; t < seq.size(); ++t) {
      const auto& taste = w.taste_at(u, static_cast<index_t>(t));
      const index_t c = w.items[static_cast<std::size_t>(seq[t])].category;
      ++n;
      own += contains(taste.categories, c);
      other += contains(stranger.categories, c);
      for (const index_t tc : taste.categories) global_share += category_mass[static_cast<std::size_t>(tc)];
    }
  }
  global_share /= static_cast<double>(n);
  const double share = static_cast<double>(own) / static_cast<double>(n);
  // pool draws (probability focus) always land in the taste's categories, global draws with about the
  // categories' popularity mass: share ~ focus + (1 - focus) * global_share, binomial sd below 0.5 / sqrt(n)
  const double slack = 4 * 0.5 / std::sqrt(static_cast<double>(n));
  CHECK(share > focus - slack);
  CHECK(share < focus + (1 - focus) * global_share + slack);
  // another user's taste: only where tastes overlap by chance
  CHECK(static_cast<double>(other) / static_cast<double>(n) < 0.5 * share);

  // inside the taste categories, the taste's brands and tier are favoured over their catalogue share
  std::int64_t in_pool = 0, brand_hits = 0, tier_hits = 0;
  double brand_base = 0, tier_base = 0;
  for (index_t u = 0; u < w.data.num_users(); ++u) {
    const auto& seq = w.data.sequences[static_cast<std::size_t>(u)];
    for (std::size_t t = 0; t < seq.size(); ++t) {
      const auto& taste = w.taste_at(u, static_cast<index_t>(t));
      const auto& f = w.items[static_cast<std::size_t>(seq[t])];
      if (!contains(taste.categories, f.category)) continue;
      ++in_pool;
      brand_hits += contains(taste.brands, f.brand);
      tier_hits += f.price_tier == taste.price_tier;
      // catalogue share of the taste's brands among the taste's categories
      std::int64_t items = 0, of_brand = 0;
      for (const index_t c : taste.categories)
        for (const rec::item_id i : w.category_items[static_cast<std::size_t>(c)]) {
          ++items;
          of_brand += contains(taste.brands, w.items[static_cast<std::size_t>(i)].brand);
        }
      brand_base += static_cast<double>(of_brand) / static_cast<double>(items);
      tier_base += 1.0 / static_cast<double>(w.config.price_tiers);
    }
  }
  CHECK(static_cast<double>(brand_hits) > 1.5 * brand_base);
  CHECK(static_cast<double>(tier_hits) > 1.5 * tier_base);
}

TEST_CASE("world: drift changes the taste once, at a position inside the sequence", "[synth]") {
  const synth::world& w = default_world();
  const auto users = w.data.num_users();
  std::int64_t drifted = 0, after_n = 0, after_in_new = 0, after_in_old_only = 0;
  for (index_t u = 0; u < users; ++u) {
    const auto k = static_cast<std::size_t>(u);
    const index_t d = w.drift_at[k];
    const auto& seq = w.data.sequences[k];
    if (d < 0) {
      CHECK(d == -1);
      CHECK(w.tastes_after[k] == w.tastes_before[k]);
      continue;
    }
    ++drifted;
    CHECK(d >= 1);
    CHECK(d < static_cast<index_t>(seq.size()));
    CHECK(w.tastes_after[k].categories != w.tastes_before[k].categories);
    for (std::size_t t = static_cast<std::size_t>(d); t < seq.size(); ++t) {
      const index_t c = w.items[static_cast<std::size_t>(seq[t])].category;
      ++after_n;
      after_in_new += contains(w.tastes_after[k].categories, c);
      after_in_old_only += contains(w.tastes_before[k].categories, c) && !contains(w.tastes_after[k].categories, c);
    }
  }
  // the number of drifting users is binomial(1000, 0.3): sd 14.5
  CHECK(std::abs(static_cast<double>(drifted) - 0.3 * static_cast<double>(users)) < 4 * 14.5);
  REQUIRE(after_n > 0);
  const double slack = 4 * 0.5 / std::sqrt(static_cast<double>(after_n));
  CHECK(static_cast<double>(after_in_new) / static_cast<double>(after_n) > w.config.taste_focus - slack);
  CHECK(static_cast<double>(after_in_old_only) / static_cast<double>(after_n) < 1 - w.config.taste_focus + slack);
}

TEST_CASE("world: the default world generates in well under a second", "[synth]") {
  const auto start = std::chrono::steady_clock::now();
  const auto w = synth::make_world(synth::world_config{.seed = 11});
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(w.data.num_users() == 1000);
  CHECK(seconds < 0.5);
}

TEST_CASE("world: a bad config is refused, naming the field", "[synth]") {
  auto refused = [](synth::world_config c, const std::string& field) {
    try {
      (void)synth::make_world(c);
    } catch (const error& e) {
      CHECK(e.place() == field);
      return;
    }
    FAIL("no error for field " << field);
  };
  auto c = synth::world_config::tiny();
  refused(
      [&] {
        auto x = c;
        x.num_categories = 13;
        return x;
      }(),
      "num_categories");
  refused(
      [&] {
        auto x = c;
        x.num_users = 0;
        return x;
      }(),
      "num_users");
  refused(
      [&] {
        auto x = c;
        x.min_length = 20;
        return x;
      }(),
      "min_length");
  refused(
      [&] {
        auto x = c;
        x.max_length = 81;
        return x;
      }(),
      "max_length");
  refused(
      [&] {
        auto x = c;
        x.taste_focus = 1.5;
        return x;
      }(),
      "taste_focus");
  refused(
      [&] {
        auto x = c;
        x.price_tiers = 0;
        return x;
      }(),
      "price_tiers");
}

TEST_CASE("oracle: three complete steps whose list names catalogue items outside the training prefix", "[synth]") {
  const auto w = synth::make_world(synth::world_config::tiny(3));
  const auto split = rec::leave_one_out(w.data);
  const auto catalogue = catalogue_of(w);
  const synth::oracle oracle(w, split, {.reveal = 1.0, .n_items = 5, .seed = 9});
  for (index_t u = 0; u < w.data.num_users(); ++u) {
    const std::string text = oracle.rationale(u);
    const auto parsed = prompt::parse_rationale(text, &catalogue);
    CHECK(parsed.status == prompt::parse_status::complete);
    REQUIRE(parsed.steps.size() == 3);
    const auto named = oracle.named_items(u);
    REQUIRE(named.size() == 5);
    REQUIRE(parsed.mentions.size() == 5);
    const auto& prefix = split.train[static_cast<std::size_t>(u)];
    for (std::size_t j = 0; j < 5; ++j) {
      const auto& m = parsed.mentions[j];
      CHECK(m.step == 3);
      CHECK(m.source == prompt::mention_source::list_item);
      CHECK(m.match.kind == prompt::match_kind::exact);
      CHECK(m.match.id == named[j]);
      CHECK(std::find(prefix.begin(), prefix.end(), m.match.id) == prefix.end());
      CHECK(contains(oracle.seen_taste(u).categories, w.items[static_cast<std::size_t>(m.match.id)].category));
    }
  }
}

TEST_CASE("oracle: at reveal 1 the text states the taste seen in the training prefix", "[synth]") {
  const synth::world& w = default_world();
  const auto split = rec::leave_one_out(w.data);
  const synth::oracle oracle(w, split, {.reveal = 1.0});
  index_t drift_inside = 0, drift_outside = 0;
  for (index_t u = 0; u < w.data.num_users(); ++u) {
    const auto k = static_cast<std::size_t>(u);
    const index_t d = w.drift_at[k];
    const auto train_n = static_cast<index_t>(split.train[k].size());
    // the taste of the last training item, from the world's own bookkeeping
    const synth::user_taste& truth = w.taste_at(u, train_n - 1);
    CHECK(oracle.seen_taste(u) == truth);
    CHECK(oracle.stated_taste(u) == truth);
    drift_inside += d >= 0 && d < train_n;
    drift_outside += d >= train_n;
    const auto parsed = prompt::parse_rationale(oracle.rationale(u));
    const auto* step1 = parsed.step(1);
    REQUIRE(step1 != nullptr);
    CHECK(named_categories(w, step1->text) == truth.categories);
    CHECK(step1->text.find(w.tier_names[static_cast<std::size_t>(truth.price_tier)] + " price tier") !=
          std::string::npos);
    const auto* step2 = parsed.step(2);
    REQUIRE(step2 != nullptr);
    for (const index_t b : truth.brands)
      CHECK(step2->text.find(w.brand_names[static_cast<std::size_t>(b)]) != std::string::npos);
  }
  // both cases occur: a drift the prefix saw (tastes_after) and one only the held-out items saw
  CHECK(drift_inside > 50);
  CHECK(drift_outside > 5);
}

TEST_CASE("oracle: at reveal 0 the stated categories agree with the truth only by chance", "[synth]") {
  const synth::world& w = default_world();
  const auto split = rec::leave_one_out(w.data);
  const double k = static_cast<double>(w.config.num_categories);
  for (const double reveal : {0.0, 1.0}) {
    const synth::oracle oracle(w, split, {.reveal = reveal, .seed = 4});
    // overlap of the stated and true category sets; for a stated set drawn uniformly of size s against a
    // true set of size m, the overlap is hypergeometric: mean s m / k, variance s (m/k) (1 - m/k) (k - s) / (k - 1)
    double observed = 0, expected = 0, variance = 0, all_true = 0;
    for (index_t u = 0; u < w.data.num_users(); ++u) {
      const auto& truth = oracle.seen_taste(u).categories;
      const auto stated = named_categories(w, prompt::parse_rationale(oracle.rationale(u)).step(1)->text);
      CHECK(stated == oracle.stated_taste(u).categories);
      const double s = static_cast<double>(stated.size()), m = static_cast<double>(truth.size());
      for (const index_t c : stated) observed += contains(truth, c);
      expected += s * m / k;
      variance += s * (m / k) * (1 - m / k) * (k - s) / (k - 1);
      all_true += m;
    }
    if (reveal == 0.0) {
      CHECK(std::abs(observed - expected) < 4 * std::sqrt(variance));
    } else {
      CHECK(observed == all_true);
      CHECK(observed - expected > 20 * std::sqrt(variance));
    }
  }
}

TEST_CASE("oracle: the text does not depend on the held-out items", "[synth]") {
  const auto w = synth::make_world(synth::world_config::tiny(2));
  const auto split = rec::leave_one_out(w.data);
  auto changed = split;
  for (std::size_t u = 0; u < changed.valid.size(); ++u) {
    changed.valid[u] = static_cast<rec::item_id>(1 + (u * 7) % static_cast<std::size_t>(w.data.num_items));
    changed.test[u] = static_cast<rec::item_id>(1 + (u * 13 + 5) % static_cast<std::size_t>(w.data.num_items));
  }
  for (const double reveal : {1.0, 0.5}) {
    const synth::oracle a(w, split, {.reveal = reveal, .seed = 1});
    const synth::oracle b(w, changed, {.reveal = reveal, .seed = 1});
    for (index_t u = 0; u < w.data.num_users(); ++u) CHECK(a.rationale(u) == b.rationale(u));
  }
  // a shorter training prefix (one more item held out) does change what is visible, and the text follows
  auto shorter = split;
  index_t differs = 0;
  for (auto& t : shorter.train) t.pop_back();
  const synth::oracle a(w, split, {}), c(w, shorter, {});
  for (index_t u = 0; u < w.data.num_users(); ++u) differs += a.rationale(u) != c.rationale(u);
  CHECK(differs > 0);
}

TEST_CASE("oracle: the history source names what the last training items show, never the latent taste", "[synth]") {
  const synth::world& w = default_world();
  const auto split = rec::leave_one_out(w.data);
  const synth::oracle_config cfg{.reveal = 1.0, .source = synth::taste_source::history, .window = 10};
  const synth::oracle oracle(w, split, cfg);
  index_t categories_right = 0;
  for (index_t u = 0; u < w.data.num_users(); ++u) {
    const auto& prefix = split.train[static_cast<std::size_t>(u)];
    std::vector<index_t> nc(static_cast<std::size_t>(w.config.num_categories), 0), nb(w.brand_names.size(), 0),
        nt(static_cast<std::size_t>(w.config.price_tiers), 0);
    for (std::size_t t = prefix.size() > 10 ? prefix.size() - 10 : 0; t < prefix.size(); ++t) {
      const auto& f = w.items[static_cast<std::size_t>(prefix[t])];
      ++nc[static_cast<std::size_t>(f.category)];
      ++nb[static_cast<std::size_t>(f.brand)];
      ++nt[static_cast<std::size_t>(f.price_tier)];
    }
    // the rule: every named value is counted at least as often as every unnamed one; the top one is always
    // named, a second exactly when it occurs at least twice and at least half as often as the top
    auto follows_rule = [](const std::vector<index_t>& counts, const std::vector<index_t>& named) {
      if (named.empty() || named.size() > 2) return false;
      index_t lowest_named = 1 << 30, highest_other = 0;
      for (std::size_t v = 0; v < counts.size(); ++v) {
        if (contains(named, v))
          lowest_named = std::min(lowest_named, counts[v]);
        else
          highest_other = std::max(highest_other, counts[v]);
      }
      std::vector<index_t> sorted = counts;
      std::sort(sorted.rbegin(), sorted.rend());
      const bool second = sorted.size() > 1 && sorted[1] >= 2 && 2 * sorted[1] >= sorted[0];
      return lowest_named >= highest_other && named.size() == (second ? 2u : 1u);
    };
    const synth::user_taste stated = oracle.stated_taste(u);
    CHECK(stated == oracle.counted_taste(u));
    CHECK(follows_rule(nc, stated.categories));
    CHECK(follows_rule(nb, stated.brands));
    CHECK(nt[static_cast<std::size_t>(stated.price_tier)] == *std::max_element(nt.begin(), nt.end()));
    CHECK(named_categories(w, prompt::parse_rationale(oracle.rationale(u)).step(1)->text) == stated.categories);
    categories_right += stated.categories == oracle.seen_taste(u).categories;
  }
  // informative but not privileged: right far more often than chance, wrong for a good share of users
  CHECK(categories_right > w.data.num_users() / 2);
  CHECK(categories_right < w.data.num_users() * 9 / 10);

  // the latent tastes are not read: another user's tastes in the world change the latent oracle's text only
  synth::world swapped = w;
  std::rotate(swapped.tastes_before.begin(), swapped.tastes_before.begin() + 1, swapped.tastes_before.end());
  std::rotate(swapped.tastes_after.begin(), swapped.tastes_after.begin() + 1, swapped.tastes_after.end());
  const synth::oracle history_swapped(swapped, split, cfg), latent(w, split, {.reveal = 1.0}),
      latent_swapped(swapped, split, {.reveal = 1.0});
  index_t latent_differs = 0;
  for (index_t u = 0; u < 200; ++u) {
    CHECK(history_swapped.rationale(u) == oracle.rationale(u));
    latent_differs += latent_swapped.rationale(u) != latent.rationale(u);
  }
  CHECK(latent_differs > 150);

  // the teach stage's key tells the sources apart; the latent source's fingerprint is the one it always had
  const distill::oracle_teacher history_teacher(w, split, cfg), latent_teacher(w, split, {.reveal = 1.0});
  CHECK(history_teacher.fingerprint() != latent_teacher.fingerprint());
  CHECK(latent_teacher.fingerprint().find("source") == std::string::npos);
  CHECK_THROWS_AS(synth::oracle(w, split, {.window = 0}), error);
}

TEST_CASE("oracle: a split of another world is refused", "[synth]") {
  const auto w = synth::make_world(synth::world_config::tiny(2));
  const auto other = synth::make_world(synth::world_config::tiny(3));
  CHECK_THROWS_AS(synth::oracle(w, rec::leave_one_out(other.data)), error);
  auto fewer = rec::leave_one_out(w.data);
  fewer.train.pop_back();
  CHECK_THROWS_AS(synth::oracle(w, fewer), error);
}

TEST_CASE("oracle_teacher: a Teacher answering by user with word counts", "[synth]") {
  STATIC_REQUIRE(distill::Teacher<distill::oracle_teacher>);
  const auto w = synth::make_world(synth::world_config::tiny(4));
  const auto split = rec::leave_one_out(w.data);
  distill::oracle_teacher teacher(w, split, {.n_items = 3});
  const std::vector<distill::teacher_request> requests = {
      {.user = 7, .system = "be brief", .prompt = "anything  at\nall"}, {.user = 2, .system = "", .prompt = ""}};
  const auto answers = teacher.teach(requests);
  REQUIRE(answers.size() == 2);
  CHECK(answers[0].text == teacher.oracle().rationale(7));
  CHECK(answers[1].text == teacher.oracle().rationale(2));
  CHECK(answers[0].prompt_tokens == 5);
  CHECK(answers[1].prompt_tokens == 0);
  CHECK(distill::oracle_teacher::words(" Step 1: a\tb\n\nc ") == 5);
  CHECK(answers[0].completion_tokens == distill::oracle_teacher::words(answers[0].text));
  CHECK(answers[0].completion_tokens > 20);
  CHECK_FALSE(answers[0].cached);
  const std::vector<distill::teacher_request> bad = {{.user = 60, .system = "", .prompt = ""}};
  CHECK_THROWS_AS(teacher.teach(bad), error);
}

TEST_CASE("leakage: scrub drops list lines and cuts prose mentions, counting them", "[synth]") {
  prompt::title_catalogue titles;
  titles.add(1, "Nova Crimson Racer");
  titles.add(2, "Halo");
  titles.add(3, "Halo 2");
  titles.add(4, "Toy Story (1995)");
  titles.add(5, "Sound of Music, The");
  const std::vector<rec::item_id> held_out = {1, 2, 4, 5};
  std::string text =
      "Step 1: Fans of NOVA CRIMSON RACER and halo like speed.\n"
      "Step 2: Racing; try Halo 2 too, and Toy Story.\n"
      "Step 3:\n"
      "1. Nova Crimson Racer\n"
      "2. Halo 2\n"
      "- The Sound of Music - a classic\n"
      "3. Nova Crimson Racers";
  CHECK(distill::mentions_any(text, held_out, titles));
  const auto report = distill::scrub_held_out(text, held_out, titles);
  CHECK(text ==
        "Step 1: Fans of and like speed.\n"
        "Step 2: Racing; try Halo 2 too, and .\n"
        "Step 3:\n"
        "1. Halo 2\n"
        "2. Nova Crimson Racers");
  CHECK(report.mentions == 5);
  CHECK(report.lines_dropped == 2);
  CHECK(report.cut == 3);
  CHECK(report.items == 4);
  CHECK_FALSE(distill::mentions_any(text, held_out, titles));
  CHECK(distill::mentions_any(text, std::vector<rec::item_id>{3}, titles));
  // a ';'-separated list (Agent4Rec's MOVIE:) loses the title and its separator, first, middle or last
  std::string movies = "MOVIE: Toy Story (1995); Heat; Halo\nMOVIE: Heat; Halo; Jaws\nMOVIE: Halo\n(1) Halo\n(2) Jaws";
  prompt::title_catalogue more = titles;
  more.add(6, "Heat");
  more.add(7, "Jaws");
  CHECK(distill::scrub_held_out(movies, held_out, more).mentions == 5);
  CHECK(movies == "MOVIE: Heat\nMOVIE: Heat; Jaws\nMOVIE: \n(1) Jaws");
  // nothing to remove: the text stays as it was
  std::string clean = "Step 1: nothing here.\n";
  CHECK(distill::scrub_held_out(clean, held_out, titles).clean());
  CHECK(clean == "Step 1: nothing here.\n");
}

TEST_CASE("leakage: after the scrub no oracle rationale names a held-out item", "[synth]") {
  const synth::world& w = default_world();
  const auto split = rec::leave_one_out(w.data);
  const auto catalogue = catalogue_of(w);
  const synth::oracle oracle(w, split, {.reveal = 1.0, .n_items = 5});
  distill::leak_report total;
  std::int64_t named_held_out = 0;
  for (index_t u = 0; u < w.data.num_users(); ++u) {
    const auto held = distill::held_out_items(split, u);
    REQUIRE(held.size() >= 1);
    std::string text = oracle.rationale(u);
    for (const rec::item_id i : oracle.named_items(u)) named_held_out += contains(held, i);
    total += distill::scrub_held_out(text, held, catalogue);
    CHECK_FALSE(distill::mentions_any(text, held, catalogue));
    for (const auto& m : prompt::parse_rationale(text, &catalogue).mentions)
      CHECK(std::find(held.begin(), held.end(), m.match.id) == held.end());
  }
  // held-out items appear only as step-3 list lines: each is one dropped line, nothing is cut from prose
  CHECK(named_held_out > 0);
  CHECK(total.lines_dropped == named_held_out);
  CHECK(total.mentions == named_held_out);
  CHECK(total.cut == 0);
}
