// The read path shared by point reads, scans and queries: find the version a view sees
// (through the VisibilityCachePolicy) and hand it out as a document.
//
// Thread safety: REQUIRES the version store's state lock held shared while a version is
// found and handed out; `state` belongs to one read view, used by one thread at a time.
#pragma once

#include <aerodb/document/document.hpp>
#include <aerodb/metrics.hpp>
#include <aerodb/mvcc/version.hpp>
#include <aerodb/outcomes.hpp>

#include <memory>
#include <optional>

namespace aerodb::engine {

template <class VisibilityCachePolicy>
struct read_path {
  using view_state = typename VisibilityCachePolicy::view_state;

  static const mvcc::version* visible(view_state& state, const mvcc::key_entry& key, commit_id bound,
                                      read_path_counters& counters) {
    return VisibilityCachePolicy::find_visible(state, key, bound, counters);
  }

  // The version as a document: its own bytes (zero-copy policies) or a copy.
  static versioned_document make_document(const mvcc::version& v, read_path_counters& counters) {
    std::shared_ptr<const mvcc::payload::buffer> bytes;
    if constexpr (VisibilityCachePolicy::zero_copy) {
      bytes = v.data.shared();
    } else {
      bytes = std::make_shared<const mvcc::payload::buffer>(v.data.bytes().begin(), v.data.bytes().end());
      ++counters.materialization_copies;
    }
    return versioned_document{document(std::move(bytes)), v.schema_version, v.commit};
  }

  // The document `key` holds as a view at `bound` sees it; nothing when absent or deleted.
  static std::optional<versioned_document> materialize(view_state& state, const mvcc::key_entry& key,
                                                       commit_id bound, read_path_counters& counters) {
    const mvcc::version* v = visible(state, key, bound, counters);
    if (!v || v->tombstone()) return std::nullopt;
    return make_document(*v, counters);
  }
};

}  // namespace aerodb::engine
