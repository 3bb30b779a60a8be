// Little-endian integer reading and writing for every on-disk structure.
//
// All multi-byte integers AeroDB stores are little-endian, whatever the host. Readers
// take a bounds-checked cursor so that decoding damaged input can fail but never read
// outside its buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace aerodb::format {

using byte_buffer = std::vector<std::byte>;

template <class UInt>
inline void put_le(byte_buffer& out, UInt v) {
  for (std::size_t i = 0; i < sizeof(UInt); ++i)
    out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFF));
}

template <class UInt>
inline void store_le(std::byte* at, UInt v) {
  for (std::size_t i = 0; i < sizeof(UInt); ++i)
    at[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFF);
}

template <class UInt>
inline UInt load_le(const std::byte* at) {
  UInt v = 0;
  for (std::size_t i = 0; i < sizeof(UInt); ++i)
    v |= static_cast<UInt>(static_cast<UInt>(std::to_integer<unsigned>(at[i])) << (8 * i));
  return v;
}

inline void put_bytes(byte_buffer& out, std::span<const std::byte> b) {
  out.insert(out.end(), b.begin(), b.end());
}
inline void put_bytes(byte_buffer& out, std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  out.insert(out.end(), p, p + s.size());
}

inline std::span<const std::byte> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view as_chars(std::span<const std::byte> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// A forward-only reader over a byte span. Every read reports failure instead of
// running past the end; once a read fails the cursor stays failed.
class cursor {
 public:
  explicit cursor(std::span<const std::byte> data) : data_(data) {}

  template <class UInt>
  bool read(UInt& v) {
    if (!ok_ || data_.size() - pos_ < sizeof(UInt)) return ok_ = false;
    v = load_le<UInt>(data_.data() + pos_);
    pos_ += sizeof(UInt);
    return true;
  }
  bool read_bytes(std::size_t n, std::span<const std::byte>& out) {
    if (!ok_ || data_.size() - pos_ < n) return ok_ = false;
    out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool read_string(std::size_t n, std::string_view& out) {
    std::span<const std::byte> b;
    if (!read_bytes(n, b)) return false;
    out = as_chars(b);
    return true;
  }
  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return pos_ == data_.size(); }
  std::size_t position() const noexcept { return pos_; }
  std::size_t remaining() const noexcept { return data_.size() - pos_; }

 private:
  std::span<const std::byte> data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace aerodb::format
