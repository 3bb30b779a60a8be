// The shape of one declared field: its type, whether it is required, and for containers
// the shape of what they hold.
//
// The trees inside a schema are built by schema::from_json (aerodb/schema/schema.hpp),
// which guarantees these invariants (a hand-built spec is only a value to compare with):
//   - `fields` is non-empty only for type object (and may be empty for an object that
//     must be empty); names are unique, valid field names, in declaration order;
//   - `items` is non-null exactly for type array; item specs have required == false;
//   - nesting is at most hard_max_depth containers deep.
// Equality is structural (deep through `items`), and order of `fields` is significant:
// declaration order is the order missing required fields are reported in, and it is
// what the canonical JSON preserves.
//
// Thread safety: immutable after construction; the shared `items` subtree is const, so
// copies of a spec share it safely across threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aerodb {

enum class field_type : std::uint8_t { string, integer, floating, boolean, object, array };

// The names used in schema definitions and in validation errors.
constexpr std::string_view to_string(field_type t) noexcept {
  switch (t) {
    case field_type::string:
      return "string";
    case field_type::integer:
      return "int";
    case field_type::floating:
      return "float";
    case field_type::boolean:
      return "bool";
    case field_type::object:
      return "object";
    case field_type::array:
      return "array";
  }
  return "?";
}

constexpr std::optional<field_type> field_type_from_string(std::string_view name) noexcept {
  for (field_type t : {field_type::string, field_type::integer, field_type::floating,
                       field_type::boolean, field_type::object, field_type::array})
    if (to_string(t) == name) return t;
  return std::nullopt;
}

struct field_spec {
  field_type type = field_type::string;
  bool required = false;
  // Members of an object, in declaration order.
  std::vector<std::pair<std::string, field_spec>> fields;
  // Element shape of an array; shared so copying a schema stays cheap.
  std::shared_ptr<const field_spec> items;

  // The special members are declared here and defaulted below the class because
  // std::pair<std::string, field_spec> cannot be instantiated while field_spec is still
  // incomplete: with implicit members, clang + libstdc++ recurse into ~vector<pair<..>>
  // from pair's conditionally-explicit default constructor and fail to compile.
  field_spec();
  explicit field_spec(field_type t, bool is_required = false);
  ~field_spec();
  field_spec(const field_spec&);
  field_spec(field_spec&&) noexcept;
  field_spec& operator=(const field_spec&);
  field_spec& operator=(field_spec&&) noexcept;

  // The declared member `name`, or nullptr. Linear: schemas are small and this keeps the
  // declaration order the only order there is.
  const field_spec* find(std::string_view name) const noexcept;

  // Structural: deep through `items`, order-sensitive over `fields`.
  friend bool operator==(const field_spec& a, const field_spec& b);
};

inline field_spec::field_spec() = default;
inline field_spec::field_spec(field_type t, bool is_required) : type(t), required(is_required) {}
inline field_spec::~field_spec() = default;
inline field_spec::field_spec(const field_spec&) = default;
inline field_spec::field_spec(field_spec&&) noexcept = default;
inline field_spec& field_spec::operator=(const field_spec&) = default;
inline field_spec& field_spec::operator=(field_spec&&) noexcept = default;

inline const field_spec* field_spec::find(std::string_view name) const noexcept {
  for (const auto& [n, spec] : fields)
    if (n == name) return &spec;
  return nullptr;
}

inline bool operator==(const field_spec& a, const field_spec& b) {
  if (a.type != b.type || a.required != b.required || a.fields != b.fields) return false;
  if (a.items == b.items) return true;  // same subtree, or both absent
  return a.items && b.items && *a.items == *b.items;
}

}  // namespace aerodb
