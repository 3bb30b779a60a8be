// The read path shared by point reads, scans and queries: find the version a view sees
// (through the VisibilityCachePolicy) and hand it out as a document.
//
// A document owns its bytes, so it may outlive the view. A zero-copy policy shares the
// version's buffer when the memory layout keeps one (the baseline's); the compact layout
// keeps the bytes inside the version's arena block, which GC may free once no view sees
// it, so there a document is a copy (counted as one), and the zero-copy read is
// read_view::get_ref (document/document_ref.hpp), bounded by the view's life.
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

  // The version as a document: its own shared bytes (zero-copy policies, when the layout
  // shares them) or a copy.
  static versioned_document make_document(const mvcc::version& v, read_path_counters& counters) {
    std::shared_ptr<const mvcc::payload::buffer> bytes;
    if (VisibilityCachePolicy::zero_copy && v.owner.shared()) {
      bytes = v.owner.shared();
    } else {
      const auto b = v.bytes();
      bytes = std::make_shared<const mvcc::payload::buffer>(b.begin(), b.end());
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
