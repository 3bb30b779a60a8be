// document_ref: a document borrowed from a read view, with no ownership of its bytes. The
// zero-copy read of every memory layout (read_view::get_ref): it points at the bytes of
// the version the view sees, wherever the layout keeps them (in the compact layout, inside
// the version's arena block), so a read costs no copy, no allocation and no reference
// count.
//
// The lifetime rule: a document_ref (and every document_view, span or string_view taken
// from it) may be used only while the read view that handed it out is open. GC never
// frees a version an open view can see (engine/gc.hpp), which is what keeps the bytes
// valid; once the view is closed the next GC may free them, and the arena may hand the
// block to another version or unmap its slab. A caller that needs the document longer
// takes an owning copy with to_document() while the view is open, or reads with get().
// This is the read-path rule "no shared ownership beyond the snapshot" made explicit.
//
// Checked: with AERODB_CHECK_LIFETIMES (detail/check_lifetimes.hpp; on unless NDEBUG)
// each ref carries a token of its view's life, and any use of a ref whose view is closed
// aborts with a message, whether or not GC has run since. Without the check, an
// AddressSanitizer build still reports a use of a block GC freed (the arena poisons freed
// blocks, mvcc/slab_arena.hpp).
//
// Thread safety: a ref is immutable; it may be read from any thread while its view is
// open (the view's one-thread rule is about calls on the view, not on the bytes).
#pragma once

#include <aerodb/commit_id.hpp>
#include <aerodb/detail/check_lifetimes.hpp>
#include <aerodb/document/document.hpp>
#include <aerodb/document/value_view.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace aerodb {

namespace detail {

#if AERODB_CHECK_LIFETIMES
[[noreturn, gnu::cold, gnu::noinline]] inline void abort_on_ref_after_view() {
  std::fputs("aerodb: a document_ref was used after the read view that handed it out was closed. A "
             "document_ref borrows the version's bytes and is valid only while its read view is open; "
             "take document_ref::to_document() (an owning copy) before closing the view, or read with "
             "get(). Aborting (AERODB_CHECK_LIFETIMES, include/aerodb/document/document_ref.hpp).\n",
             stderr);
  std::abort();
}

// A read view's life, as refs see it: alive until the view is closed (destroyed, or
// assigned over). Made on the first get_ref, so a view that never lends costs nothing.
class view_life {
 public:
  class token {
   public:
    token() = default;
    void check() const noexcept {
      if (watched_ && life_.expired()) abort_on_ref_after_view();
    }

   private:
    friend class view_life;
    explicit token(const std::shared_ptr<const int>& life) : life_(life), watched_(true) {}
    std::weak_ptr<const int> life_;
    bool watched_ = false;  // a default-constructed (empty) ref has no view to outlive
  };

  token lend() {
    if (!life_) life_ = std::make_shared<const int>(0);
    return token(life_);
  }

 private:
  std::shared_ptr<const int> life_;
};
#else
class view_life {
 public:
  struct token {
    void check() const noexcept {}
  };
  token lend() noexcept { return {}; }
};
#endif

}  // namespace detail

class document_ref {
 public:
  document_ref() = default;  // empty(): borrows nothing
  // REQUIRES: `bytes` a valid encoded document (a version's), valid while `life` is.
  document_ref(std::span<const std::byte> bytes, detail::view_life::token life) noexcept
      : bytes_(bytes), life_(std::move(life)) {}

  bool empty() const noexcept { return bytes_.data() == nullptr; }
  // REQUIRES for everything below: the view that handed the ref out is open.
  std::span<const std::byte> bytes() const noexcept {
    life_.check();
    return bytes_;
  }
  document_view view() const noexcept { return document_view(bytes()); }
  std::string_view id() const noexcept { return view().id(); }
  std::string to_json_string() const { return view().to_json_string(); }
  // An owning copy, valid after the view is closed.
  document to_document() const {
    const auto b = bytes();
    return document(std::make_shared<const std::vector<std::byte>>(b.begin(), b.end()));
  }

  friend bool operator==(const document_ref& a, const document_ref& b) noexcept {
    const auto x = a.bytes(), y = b.bytes();
    return std::equal(x.begin(), x.end(), y.begin(), y.end());
  }
  friend bool operator==(const document_ref& a, const document& b) noexcept {
    const auto x = a.bytes(), y = b.bytes();
    return std::equal(x.begin(), x.end(), y.begin(), y.end());
  }

 private:
  std::span<const std::byte> bytes_;
  detail::view_life::token life_;
};

// What read_view::get_ref hands out: the borrowed document and its version's identity.
struct versioned_document_ref {
  document_ref doc;
  std::uint32_t schema_version = 0;
  commit_id committed_at = 0;
};

}  // namespace aerodb
