// RoPE's rotation of one (i, i + head_dim / 2) pair on the GPU (model/rope.cpp,
// rotate_half), shared by the RoPE kernels of layer_kernels.cu and the decode step's
// cache append (kv/page_kernels.cu), so that every path rotates bit for bit alike:
// the fp32 angle float(pos) * inv_freq[i] rounded once, its cos/sin in double rounded
// to float, the rotation in float with explicit _rn operations (no FMA contraction).
// Include only from .cu files.
#pragma once
#include <cstdint>

namespace zc::cuda::detail {

struct RopeAngle {
  float c, s;
};

__device__ __forceinline__ RopeAngle rope_angle(int32_t position, float inv_freq) {
  const float angle = __fmul_rn(static_cast<float>(position), inv_freq);
  double sd, cd;
  sincos(static_cast<double>(angle), &sd, &cd);
  return {static_cast<float>(cd), static_cast<float>(sd)};
}

// (a, b) = (x[i], x[i + half]) -> (a c - b s, b c + a s).
__device__ __forceinline__ void rope_rotate(float a, float b, RopeAngle r, float& lo, float& hi) {
  lo = __fsub_rn(__fmul_rn(a, r.c), __fmul_rn(b, r.s));
  hi = __fadd_rn(__fmul_rn(b, r.c), __fmul_rn(a, r.s));
}

}  // namespace zc::cuda::detail
