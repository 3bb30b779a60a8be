// Predicate matching and the order of query results, over encoded documents.
//
// Matching: a predicate's field is resolved with document_view::find_path; a missing field
// or a non-scalar value (null, array, object) never matches, whatever the operator (so
// `x lt 5` does not select documents lacking x). Otherwise the document's value is
// compared with the predicate's in the scalar total order (aerodb/index/scalar.hpp):
// `eq` means equal in that order, so 1 matches 1.0, and a comparison across types follows
// the type ranks (false < true < numbers < strings) — the planner refuses such queries
// against the schema, but the matcher stays total so the executor can re-check any
// candidate an index hands it.
//
// Result order (compare_for_sort): by the sort field's value in the scalar order, then by
// `_id` ascending. Documents whose sort field is missing or non-scalar sort before every
// value in ascending order (and so after every value in descending order). With direction
// desc only the value order is reversed: the `_id` tie-break stays ASCENDING, so equal
// values always come out in the same order whichever the direction and whatever path
// produced the candidates — this is what makes results (and their cut by `limit`)
// deterministic.
//
// Nothing here allocates: strings are compared in place in the encoded buffer.
//
// Thread safety: stateless functions over read-only views.
#pragma once

#include <aerodb/document/value_view.hpp>
#include <aerodb/index/scalar.hpp>
#include <aerodb/query/query.hpp>

#include <compare>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aerodb::query {

namespace detail {

inline bool is_scalar_kind(value_kind k) noexcept {
  return k == value_kind::boolean || k == value_kind::integer || k == value_kind::floating ||
         k == value_kind::string;
}

inline scalar::kind scalar_kind_of(value_kind k) noexcept {
  switch (k) {
    case value_kind::boolean: return scalar::kind::boolean;
    case value_kind::integer: return scalar::kind::integer;
    case value_kind::floating: return scalar::kind::floating;
    default: return scalar::kind::string;
  }
}

inline std::strong_ordering compare_bytes(std::string_view a, std::string_view b) noexcept {
  const int c = a.compare(b);
  return c < 0 ? std::strong_ordering::less
               : c > 0 ? std::strong_ordering::greater : std::strong_ordering::equal;
}

// A number or bool view as a scalar: cheap, since only strings allocate.
inline scalar non_string_scalar(const value_view& v) noexcept {
  switch (v.kind()) {
    case value_kind::boolean: return scalar(v.as_bool());
    case value_kind::integer: return scalar(v.as_int());
    default: return scalar(v.as_double());
  }
}

// The scalar order between a document value and a scalar. REQUIRES: v is a scalar kind.
inline std::strong_ordering compare_value(const value_view& v, const scalar& s) {
  const int rv = scalar::type_rank(scalar_kind_of(v.kind()));
  const int rs = scalar::type_rank(s.type());
  if (rv != rs) return rv <=> rs;
  if (v.kind() == value_kind::string) return compare_bytes(v.as_string(), s.as_string());
  return non_string_scalar(v) <=> s;
}

// The scalar order between two document values. REQUIRES: both are scalar kinds.
inline std::strong_ordering compare_values(const value_view& a, const value_view& b) {
  const int ra = scalar::type_rank(scalar_kind_of(a.kind()));
  const int rb = scalar::type_rank(scalar_kind_of(b.kind()));
  if (ra != rb) return ra <=> rb;
  if (a.kind() == value_kind::string) return compare_bytes(a.as_string(), b.as_string());
  return non_string_scalar(a) <=> non_string_scalar(b);
}

// The value at `path` if it is a scalar.
inline std::optional<value_view> scalar_at(const document_view& d, std::string_view path) {
  auto v = d.find_path(path);
  if (!v || !is_scalar_kind(v->kind())) return std::nullopt;
  return v;
}

}  // namespace detail

inline bool matches(const predicate& p, const document_view& d) {
  const auto v = detail::scalar_at(d, p.field);
  if (!v) return false;
  const auto c = detail::compare_value(*v, p.value);
  switch (p.o) {
    case op::eq: return c == 0;
    case op::gt: return c > 0;
    case op::gte: return c >= 0;
    case op::lt: return c < 0;
    case op::lte: return c <= 0;
  }
  return false;
}

inline bool matches_all(const std::vector<predicate>& ps, const document_view& d) {
  for (const predicate& p : ps)
    if (!matches(p, d)) return false;
  return true;
}

// A document's place in the result order, read from its bytes once: sorting many hits
// then compares these instead of searching both documents on every comparison. The views
// point into the document's bytes, which must outlive the key.
struct sort_key {
  std::optional<value_view> value;  // the sort field's value; empty when missing
  std::string_view doc_id;

  sort_key(const sort_spec& s, const document_view& d)
      : value(detail::scalar_at(d, s.field)), doc_id(d.id()) {}
};

// less: `a` comes before `b` in the results. See the header comment for the order.
inline std::strong_ordering compare_for_sort(const sort_spec& s, const sort_key& a,
                                             const sort_key& b) {
  std::strong_ordering c = std::strong_ordering::equal;
  if (a.value && b.value)
    c = detail::compare_values(*a.value, *b.value);
  else if (a.value || b.value)
    c = a.value ? std::strong_ordering::greater : std::strong_ordering::less;  // missing first
  if (s.dir == direction::desc) c = 0 <=> c;
  if (c != 0) return c;
  return detail::compare_bytes(a.doc_id, b.doc_id);
}

// Against a page's continuation: > 0 when `a` comes after it (and so belongs to the page).
inline std::strong_ordering compare_for_sort(const sort_spec& s, const sort_key& a, const continuation& b) {
  std::strong_ordering c = std::strong_ordering::equal;
  if (a.value && b.value)
    c = detail::compare_value(*a.value, *b.value);
  else if (a.value || b.value)
    c = a.value ? std::strong_ordering::greater : std::strong_ordering::less;  // missing first
  if (s.dir == direction::desc) c = 0 <=> c;
  if (c != 0) return c;
  return detail::compare_bytes(a.doc_id, b.doc_id);
}

// The continuation that resumes after `k`.
inline continuation continuation_of(const sort_key& k) {
  continuation out;
  out.doc_id = std::string(k.doc_id);
  if (k.value) {
    if (k.value->kind() == value_kind::string)
      out.value = scalar(std::string(k.value->as_string()));
    else
      out.value = detail::non_string_scalar(*k.value);
  }
  return out;
}

inline std::strong_ordering compare_for_sort(const sort_spec& s, const document_view& a,
                                             const document_view& b) {
  return compare_for_sort(s, sort_key(s, a), sort_key(s, b));
}

}  // namespace aerodb::query
