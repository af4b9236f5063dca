// Private to src/io: limits shared by the safetensors reader and writer.
#pragma once
#include <cstdint>

namespace zc::io {

// The reference implementation refuses headers above 100 MB (MAX_HEADER_SIZE); a
// larger length field means the file is not safetensors, so do not trust it.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// The header is padded with spaces so that the data section starts 8-byte aligned,
// as the reference writer does.
inline constexpr uint64_t kHeaderAlign = 8;

}  // namespace zc::io
