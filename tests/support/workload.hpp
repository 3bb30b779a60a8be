// A deterministic, single-threaded mixed workload for the cross-policy tests: schemas,
// collections, indexes, single writes and atomic batches (inserts, updates, deletes), read
// views held across writes, GC and checkpoints. The same seed gives the same operations,
// so two engines given the same workload must produce the same files and answers.
#pragma once

#include "common.hpp"

#include <optional>
#include <random>
#include <set>
#include <variant>

namespace aerodb_test {

struct wl_schema { std::string json; };
struct wl_collection { std::string name, schema_id; };
struct wl_index { std::string collection, field; };
struct wl_batch { aerodb::write_batch ops; };
struct wl_gc {};
struct wl_checkpoint {};
struct wl_hold_view {};     // opens a read view and keeps it (GC must respect it)
struct wl_release_view {};  // closes the oldest held view

using wl_step = std::variant<wl_schema, wl_collection, wl_index, wl_batch, wl_gc, wl_checkpoint,
                             wl_hold_view, wl_release_view>;

struct mixed_workload {
  std::vector<wl_step> steps;
  state_map final_state;
};

// One random atomic batch over the documents in `st`, which it updates to the state after
// the batch: one operation three times in four, else two to five; each an insert of a new
// key "k<next_key>" (half of them, and whenever there is nothing else to do), an update
// or a delete of an existing document of the collection `pick_collection()` names; no
// document is touched twice. users documents have a name, an age and an address.city,
// items documents a qty, all of schema version 1. The same rng state gives the same batch.
template <class PickCollection>
aerodb::write_batch random_batch(std::mt19937& rng, state_map& st, int& next_key,
                                 PickCollection&& pick_collection) {
  auto pick_existing = [&](const std::string& c) -> std::string {
    auto& m = st[c];
    if (m.empty()) return {};
    auto it = m.begin();
    std::advance(it, static_cast<long>(rng() % m.size()));
    return it->first;
  };
  auto json_for = [&](const std::string& c, const std::string& id) {
    if (c == "items") return R"({"_id":")" + id + R"(","qty":)" + std::to_string(rng() % 50) + "}";
    return R"({"_id":")" + id + R"(","name":"user )" + std::to_string(rng() % 1000) + R"(","age":)" +
           std::to_string(rng() % 100) + R"(,"address":{"city":"c)" + std::to_string(rng() % 7) + R"("}})";
  };
  aerodb::write_batch ops;
  const int n_ops = rng() % 4 == 0 ? 2 + static_cast<int>(rng() % 4) : 1;
  std::set<std::pair<std::string, std::string>> touched;
  for (int k = 0; k < n_ops; ++k) {
    const std::string c = pick_collection();
    const unsigned what = rng() % 10;
    const std::string existing = pick_existing(c);
    if (what < 5 || existing.empty() || touched.count({c, existing})) {
      const std::string id = "k" + std::to_string(next_key++);
      const std::string json = json_for(c, id);
      ops.insert(c, 1, json);
      st[c][id] = {1, json};
      touched.insert({c, id});
    } else if (what < 8) {
      const std::string json = json_for(c, existing);
      ops.update(c, existing, 1, json);
      st[c][existing] = {1, json};
      touched.insert({c, existing});
    } else {
      ops.remove(c, existing);
      st[c].erase(existing);
      touched.insert({c, existing});
    }
  }
  return ops;
}

inline mixed_workload make_mixed_workload(std::uint32_t seed, int data_steps) {
  mixed_workload w;
  auto& st = w.final_state;
  w.steps.push_back(wl_schema{user_schema_v1});
  w.steps.push_back(wl_collection{"users", "user"});
  st["users"];
  w.steps.push_back(wl_schema{item_schema_v1});
  w.steps.push_back(wl_collection{"items", "item"});
  st["items"];
  w.steps.push_back(wl_index{"users", "age"});
  std::mt19937 rng(seed);
  int next_key = 0;
  for (int i = 0; i < data_steps; ++i) {
    if (i == data_steps / 3) w.steps.push_back(wl_index{"users", "address.city"});
    if (i == data_steps / 4) w.steps.push_back(wl_index{"items", "qty"});
    const unsigned special = rng() % 40;
    if (special == 0) { w.steps.push_back(wl_gc{}); continue; }
    if (special == 1) { w.steps.push_back(wl_checkpoint{}); continue; }
    if (special == 2) { w.steps.push_back(wl_hold_view{}); continue; }
    if (special == 3) { w.steps.push_back(wl_release_view{}); continue; }
    w.steps.push_back(wl_batch{random_batch(rng, st, next_key, [&] { return rng() % 3 == 0 ? "items" : "users"; })});
  }
  return w;
}

// Runs one step on db; read views it holds live in `held`. Returns the error's text when
// the step fails.
template <class Db>
std::optional<std::string> run_step(Db& db, const wl_step& s,
                                    std::vector<typename Db::read_view>& held) {
  std::optional<std::string> why;
  auto note = [&](const auto& r) {
    if (!r) why = r.error_value().to_string();
  };
  if (auto* x = std::get_if<wl_schema>(&s)) note(db.register_schema(x->json));
  else if (auto* c = std::get_if<wl_collection>(&s)) note(db.create_collection(c->name, c->schema_id));
  else if (auto* ix = std::get_if<wl_index>(&s)) note(db.create_index(ix->collection, ix->field));
  else if (auto* b = std::get_if<wl_batch>(&s)) note(db.commit(b->ops));
  else if (std::holds_alternative<wl_gc>(s)) note(db.gc());
  else if (std::holds_alternative<wl_checkpoint>(s)) note(db.checkpoint());
  else if (std::holds_alternative<wl_hold_view>(s)) held.push_back(db.read());
  else if (std::holds_alternative<wl_release_view>(s)) { if (!held.empty()) held.erase(held.begin()); }
  return why;
}

// Runs steps [from, to) on db. Fails the test on any error: the workload only makes valid
// requests.
template <class Db>
void run_steps(Db& db, const mixed_workload& w, std::size_t from, std::size_t to,
               std::vector<typename Db::read_view>& held) {
  for (std::size_t i = from; i < to && i < w.steps.size(); ++i)
    if (auto why = run_step(db, w.steps[i], held)) FAIL("workload step " << i << " failed: " << *why);
}

// Queries whose answers every engine must agree on (JSON text of each answer).
inline const std::vector<std::string>& probe_queries() {
  static const std::vector<std::string> q = {
      R"({"collection":"users","schema_version":1,"filter":{"age":{"$gte":50}},"sort":{"age":"desc"},"limit":25})",
      R"({"collection":"users","schema_version":1,"filter":{"age":42},"limit":100})",
      R"({"collection":"users","schema_version":1,"filter":{"address.city":"c3","age":{"$lt":30}},"limit":100})",
      R"({"collection":"users","schema_version":1,"sort":{"_id":"asc"},"limit":40})",
      R"({"collection":"items","schema_version":1,"filter":{"qty":{"$gt":10,"$lte":20}},"sort":{"qty":"asc"},"limit":1000})",
  };
  return q;
}

// The answer to each query (documents and CommitIds, in order), as text.
template <class View>
std::vector<std::string> answers_to(const View& view, const std::vector<std::string>& queries) {
  std::vector<std::string> out;
  for (const auto& q : queries) {
    auto r = view.query(q);
    if (!r) FAIL("query failed: " << r.error_value().to_string() << " for " << q);
    std::string s;
    for (const auto& d : r->documents) s += d.doc.to_json_string() + "@" + std::to_string(d.committed_at) + "\n";
    out.push_back(std::move(s));
  }
  return out;
}

template <class View>
std::vector<std::string> probe_answers(const View& view) {
  return answers_to(view, probe_queries());
}

}  // namespace aerodb_test
