// The query model: what a caller asks for, before it is checked against a catalog.
//
// A query names one collection and one schema version, ANDs a list of comparisons
// (eq, gt, gte, lt, lte) on scalar fields, optionally sorts on one field, and must carry a
// limit. This header only holds the shape; the rules live elsewhere:
//   - aerodb/query/parse.hpp  the JSON form (parse_query, to_json);
//   - aerodb/query/plan.hpp   validation against the catalog and the rule-based planner;
//   - aerodb/query/match.hpp  predicate matching and the result order.
// A query_spec may be built in code (the `query` builder below) or parsed from JSON; both
// produce the same values for the same query, and make_plan is the single gate that
// decides whether a spec may run, so a spec built in code that the JSON form could not
// express (an empty field name, a NaN, an operator repeated on one field) is refused there.
//
// Field names are dotted paths through nested objects ("address.city"); array elements
// are not addressable, matching document_view::find_path.
//
// Thread safety: plain values; distinct objects may be used concurrently, a const object
// may be read from any number of threads.
#pragma once

#include <aerodb/index/scalar.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace aerodb::query {

enum class op : std::uint8_t { eq, gt, gte, lt, lte };

// The operator as the JSON form spells it ("$eq", "$gt", ...).
constexpr std::string_view to_string(op o) noexcept {
  switch (o) {
    case op::eq: return "$eq";
    case op::gt: return "$gt";
    case op::gte: return "$gte";
    case op::lt: return "$lt";
    case op::lte: return "$lte";
  }
  return "?";
}

constexpr std::optional<op> op_from_string(std::string_view name) noexcept {
  for (op o : {op::eq, op::gt, op::gte, op::lt, op::lte})
    if (to_string(o) == name) return o;
  return std::nullopt;
}

constexpr bool is_range(op o) noexcept { return o != op::eq; }

struct predicate {
  std::string field;  // dotted path
  op o = op::eq;
  scalar value;
  // Values compare in the scalar order, so {x eq 1} == {x eq 1.0}: they select the same
  // documents.
  friend bool operator==(const predicate&, const predicate&) = default;
};

enum class direction : std::uint8_t { asc, desc };

constexpr std::string_view to_string(direction d) noexcept {
  return d == direction::asc ? "asc" : "desc";
}

struct sort_spec {
  std::string field;
  direction dir = direction::asc;
  friend bool operator==(const sort_spec&, const sort_spec&) = default;
};

// Where the next page of a query starts: the place in the result order of the last
// document of the previous page (query_result::next). `value` is that document's sort field
// (empty when it lacks the field, which sorts first); `doc_id` breaks ties, as the order
// does. A page with `after` holds the documents strictly after it, so paging with the same
// read view meets every result once, with no duplicate and no gap; with a newer view, each
// page answers for its own view (keyset paging).
struct continuation {
  std::optional<scalar> value;
  std::string doc_id;
  friend bool operator==(const continuation&, const continuation&) = default;
};

// The documented cap on `limit`; a larger limit is AERO_QUERY_UNBOUNDED.
inline constexpr std::int64_t max_limit = 10'000;

struct query_spec {
  std::string collection;
  std::uint32_t schema_version = 0;  // 0: not given (make_plan refuses it)
  std::vector<predicate> filter;     // ANDed, in the order given
  std::optional<sort_spec> sort;
  std::optional<std::int64_t> limit;  // empty: not given (make_plan refuses it)
  std::optional<continuation> after = std::nullopt;  // a page after the one that handed this out
  friend bool operator==(const query_spec&, const query_spec&) = default;
};

// What `where` accepts: whatever a scalar can be built from directly.
// nullptr is excluded: it would reach scalar(const char*) and build a string from null.
template <class T>
concept scalar_source = std::constructible_from<scalar, T> &&
                        !std::same_as<std::remove_cvref_t<T>, std::nullptr_t>;

// A fluent builder:
//   query("users").version(1).where("age", op::gte, 21).where("name", op::eq, "Ada")
//       .sort_by("age", direction::desc).limit(50).spec()
// It records what it is told and checks nothing; make_plan does. Methods return *this by
// reference, so a chain on a temporary is fine as long as spec() (or a copy) is taken
// before the end of the full expression.
class query {
 public:
  explicit query(std::string collection) { spec_.collection = std::move(collection); }

  query& version(std::uint32_t v) {
    spec_.schema_version = v;
    return *this;
  }
  template <scalar_source T>
  query& where(std::string field, op o, T&& value) {
    spec_.filter.push_back({std::move(field), o, scalar(std::forward<T>(value))});
    return *this;
  }
  // scalar has no string_view constructor; without this overload a string_view would not
  // be accepted at all.
  query& where(std::string field, op o, std::string_view value) {
    spec_.filter.push_back({std::move(field), o, scalar(std::string(value))});
    return *this;
  }
  query& where(predicate p) {
    spec_.filter.push_back(std::move(p));
    return *this;
  }
  query& sort_by(std::string field, direction dir = direction::asc) {
    spec_.sort = sort_spec{std::move(field), dir};
    return *this;
  }
  query& limit(std::int64_t n) {
    spec_.limit = n;
    return *this;
  }
  // The next page: pass the previous result's `next`.
  query& after(continuation c) {
    spec_.after = std::move(c);
    return *this;
  }

  const query_spec& spec() const& noexcept { return spec_; }
  query_spec spec() && noexcept { return std::move(spec_); }

 private:
  query_spec spec_;
};

}  // namespace aerodb::query

namespace aerodb {
using query_builder = query::query;
}  // namespace aerodb
