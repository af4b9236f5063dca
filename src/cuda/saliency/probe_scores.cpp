// Host side of the GPU probe pass (probe_scores.h): argument checks, the choice of
// path, workspace growth, and the launches: the fused row and column kernels
// (probe_fused.cu), or the one strided-batched cuBLAS GEMM of the logits and the
// kernels that read them back (probe_scores.cu).
#include "cuda/saliency/probe_scores.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/error.h"
#include "cuda/saliency/saliency_launch.h"

namespace zc::cuda {

namespace {

void check_cublas(cublasStatus_t st, const char* what) {
  if (st != CUBLAS_STATUS_SUCCESS) {
    fail("cuda probe scores: {}: {} ({})", what, cublasGetStatusName(st), cublasGetStatusString(st));
  }
}

// DeviceBuffer::resize reallocates on any change; the workspace only ever grows.
template <typename T>
void grow(DeviceBuffer<T>& buf, size_t n) {
  if (buf.size() < n) buf.resize(n);
}

}  // namespace

ProbeWorkspace::~ProbeWorkspace() {
  if (handle_) cublasDestroy(handle_);
}

cublasHandle_t ProbeWorkspace::handle() {
  if (!handle_) check_cublas(cublasCreate(&handle_), "cublasCreate");
  return handle_;
}

namespace {

// Sizes the checks below have established: L >= 1, g * n_probes rows per KV head.
struct Dims {
  int L, H, K, d, g, P;
  long long R;
  float scale;
};

detail::ScoreNorm score_norm(saliency::Metric metric, saliency::Norm norm) {
  if (metric != saliency::Metric::Normalized) return detail::ScoreNorm::None;
  return norm == saliency::Norm::Full ? detail::ScoreNorm::Full : detail::ScoreNorm::ProbeCount;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// The fused kernels cover head_dim 64 and 128 with 16-byte aligned rows (cp.async), and
// grids whose 1-D block counts fit in 31 bits.
bool fused_applies(const Dims& s, const uint16_t* q, const uint16_t* k) {
  if ((s.d != 64 && s.d != 128) || !aligned16(q) || !aligned16(k)) return false;
  const long long row_blocks = (s.R + 63) / 64 * s.K, col_blocks = (s.L + 63LL) / 64 * s.K;
  return std::max(row_blocks, col_blocks) <= std::numeric_limits<int>::max();
}

void run_fused(const detail::ProbePath& path, const Dims& s, const uint16_t* q, const uint16_t* k,
               const int32_t* probes, detail::ScoreNorm norm, float* out, ProbeWorkspace& ws,
               cudaStream_t stream, const float* row_lse) {
  for (int v : {path.row_warp_rows, path.col_warp_keys}) {
    if (v != 0 && v != 16 && v != 32) fail("cuda probe scores: fused variant {} rows per warp (16 or 32)", v);
  }
  static_assert(sizeof(detail::ProbeRowInfo) == sizeof(uint64_t), "row records are 8 bytes");
  detail::ProbeFusedParams p;
  p.q = q, p.k = k, p.probes = probes, p.row_lse = row_lse;
  p.L = s.L, p.n_heads = s.H, p.n_kv = s.K, p.d = s.d, p.n_probes = s.P;
  p.scale_log2 = static_cast<float>(static_cast<double>(s.scale) * 1.4426950408889634);
  p.norm = norm;
  p.row_warp_rows = path.row_warp_rows, p.col_warp_keys = path.col_warp_keys;
  grow(ws.row_info, static_cast<size_t>(s.K) * static_cast<size_t>(s.R));
  grow(ws.tile_bad, static_cast<size_t>(detail::probe_row_tiles(p)));
  p.rows = reinterpret_cast<detail::ProbeRowInfo*>(ws.row_info.get());
  p.tile_bad = ws.tile_bad.get();
  p.out = out;
  check(detail::launch_probe_rows(p, stream), "fused probe row kernel");
  check(detail::launch_probe_columns(p, stream), "fused probe column kernel");
}

void run_cublas(const Dims& s, const uint16_t* q, const uint16_t* k, const int32_t* probes,
                detail::ScoreNorm how, float* out, ProbeWorkspace& ws, cudaStream_t stream) {
  const int L = s.L, H = s.H, K = s.K, d = s.d, g = s.g, n_probes = s.P;
  const long long R = s.R;
  const float scale = s.scale;
  const auto UR = static_cast<size_t>(R), UK = static_cast<size_t>(K);
  grow(ws.q_probe, UK * UR * static_cast<size_t>(d));
  grow(ws.logits, UK * UR * static_cast<size_t>(L));
  grow(ws.row_max, UK * UR);
  grow(ws.row_inv, UK * UR);
  grow(ws.bad_probes, 1);

  check(cudaMemsetAsync(ws.bad_probes.get(), 0, sizeof(int), stream), "probe flag reset");
  check(detail::launch_gather_probes(q, probes, n_probes, L, H, K, d, ws.q_probe.get(),
                                     ws.bad_probes.get(), stream),
        "probe gather kernel");

  // Column-major view (cuBLAS): C (L x R, ldc L) = A^T B with A = K_h^T (d x L, lda
  // n_kv * d: token i's key of head h at k + i * n_kv * d + h * d, batch stride d) and
  // B = Q_h^T (d x R, ldb d). C's memory is then S_h row-major [R][L].
  cublasHandle_t handle = ws.handle();
  check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
  const float alpha = scale, beta = 0.0f;
  check_cublas(cublasGemmStridedBatchedEx(
                   handle, CUBLAS_OP_T, CUBLAS_OP_N, L, static_cast<int>(R), d, &alpha, k,
                   CUDA_R_16BF, K * d, d, ws.q_probe.get(), CUDA_R_16BF, d, R * d, &beta,
                   ws.logits.get(), CUDA_R_32F, L, R * L, K, CUBLAS_COMPUTE_32F,
                   CUBLAS_GEMM_DEFAULT),
               "logits GEMM (cublasGemmStridedBatchedEx)");

  check(detail::launch_row_stats(ws.logits.get(), probes, n_probes, g, K, L, ws.row_max.get(),
                                 ws.row_inv.get(), stream),
        "probe row statistics kernel");
  // Enough CTAs to fill the GPU (about 4 per SM): short prompts give few token blocks,
  // so the probe list is cut into slices whose partial sums a last kernel adds up.
  const long long token_blocks = (static_cast<long long>(L) + 255) / 256 * K;
  const long long want = (4LL * sm_count() + token_blocks - 1) / token_blocks;
  const int chunks = static_cast<int>(std::min<long long>({want, n_probes, 64}));
  grow(ws.partial, static_cast<size_t>(chunks) * UK * static_cast<size_t>(L));
  check(detail::launch_column_sums(ws.logits.get(), probes, n_probes, g, K, L, ws.row_max.get(),
                                   ws.row_inv.get(), chunks, ws.partial.get(), stream),
        "probe column sums kernel");
  check(detail::launch_finish_scores(ws.partial.get(), chunks, probes, n_probes, K, L, how,
                                     ws.bad_probes.get(), out, stream),
        "probe score normalization kernel");
}

}  // namespace

void probe_scores(const ProbeScoreShape& shape, const uint16_t* q, const uint16_t* k,
                  const int32_t* probes, int n_probes, saliency::Metric metric,
                  saliency::Norm norm, float* out, ProbeWorkspace& ws, cudaStream_t stream,
                  const float* row_lse) {
  detail::probe_scores_with({}, shape, q, k, probes, n_probes, metric, norm, out, ws, stream, row_lse);
}

void detail::probe_scores_with(const ProbePath& path, const ProbeScoreShape& shape,
                               const uint16_t* q, const uint16_t* k, const int32_t* probes,
                               int n_probes, saliency::Metric metric, saliency::Norm norm,
                               float* out, ProbeWorkspace& ws, cudaStream_t stream,
                               const float* row_lse) {
  const int L = shape.L, H = shape.n_heads, K = shape.n_kv_heads, d = shape.head_dim;
  if (L < 0 || K < 1) {
    fail("cuda probe scores: bad shape L = {}, n_kv_heads = {} (L >= 0, n_kv_heads >= 1)", L, K);
  }
  if (metric == saliency::Metric::Random) {
    fail("cuda probe scores: metric random is computed on the host (saliency::scores), not here");
  }
  if (L == 0) return;
  if (out == nullptr) fail("cuda probe scores: null output for L = {}", L);
  if (metric == saliency::Metric::Recent) {
    check(detail::launch_recent_scores(K, L, out, stream), "recent scores kernel");
    return;
  }
  if (metric != saliency::Metric::Normalized && metric != saliency::Metric::Accumulated) {
    fail("cuda probe scores: unknown metric {}", static_cast<int>(metric));
  }
  if (H < 1 || H % K != 0 || d < 1) {
    fail(
        "cuda probe scores: bad shape n_heads = {}, n_kv_heads = {}, head_dim = {} (n_heads "
        "must be a multiple of n_kv_heads)",
        H, K, d);
  }
  const float scale = shape.scale == 0.0f ? 1.0f / std::sqrt(static_cast<float>(d)) : shape.scale;
  if (!std::isfinite(scale) || scale < 0.0f) fail("cuda probe scores: bad softmax scale {}", scale);
  if (n_probes < 1 || n_probes > L) {
    fail("cuda probe scores: {} probe rows for L = {} (need 1..L; select_probes gives them)",
         n_probes, L);
  }
  if (q == nullptr || k == nullptr || probes == nullptr) {
    fail("cuda probe scores: null {} for L = {}", q == nullptr ? "q" : k == nullptr ? "k" : "probes",
         L);
  }
  const int g = H / K;
  const long long R = static_cast<long long>(g) * n_probes;  // probe rows per KV head
  if (R > std::numeric_limits<int>::max() ||
      static_cast<long long>(K) * d > std::numeric_limits<int>::max()) {
    fail("cuda probe scores: {} probe rows per KV head x {} KV heads exceed int GEMM sizes", R, K);
  }
  if (K > 65535) fail("cuda probe scores: {} KV heads exceed the grid (65535)", K);
  const Dims dims{L, H, K, d, g, n_probes, R, scale};
  const detail::ScoreNorm how = score_norm(metric, norm);
  const bool fused = fused_applies(dims, q, k);
  if (path.kind == ProbePath::Fused && !fused) {
    fail("cuda probe scores: the fused path needs head_dim 64 or 128 and 16-byte aligned q and k "
         "(head_dim {})", d);
  }
  if (path.kind != ProbePath::Cublas && fused) {
    run_fused(path, dims, q, k, probes, how, out, ws, stream, row_lse);
  } else {
    run_cublas(dims, q, k, probes, how, out, ws, stream);
  }
}

}  // namespace zc::cuda
