// Host-side helpers of the CUDA backend (issue 4): error checks that throw zc::Error,
// the "is there a GPU" probe tests skip on, and an owning device buffer.
// Host code only (g++ compiles it); kernels live in .cu files that do not include it.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace zc::cuda {

// Throws zc::Error "cuda: <what>: <error name> (<description>)" unless e == cudaSuccess.
void check(cudaError_t e, const char* what);
// check(cudaGetLastError(), what): after a kernel launch.
void check_launch(const char* what);

// Whether a usable CUDA device exists; when not, *why says what cudaGetDeviceCount
// answered (e.g. no driver, or zero devices).
bool device_available(std::string* why = nullptr);

// Multiprocessor count of the current device (cached after the first call).
int sm_count();

// The largest power of two up to 256 that divides the address (which vector widths a
// kernel may use on it: cuBLASLt's plans, the 16-byte paths of the layer kernels).
inline uint32_t alignment(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t bytes = 256;
  while (bytes > 1 && a % bytes != 0) bytes /= 2;
  return bytes;
}

// The kernel families of a decode step, for choosing which launch with programmatic
// dependent launch: the skinny products (gemv.cu), the layer kernels (RMSNorm, RoPE,
// SwiGLU, ...: layer_kernels.cu), the cache's page kernels (append), decode
// attention's split kernels and its merge kernel.
enum class PdlKernel { Gemv, Layer, Page, Split, Merge };
inline constexpr int kPdlFamilies = 5;

// Whether kernels of `family` launch with programmatic dependent launch
// (core/launch.cuh), on GPUs of compute capability 9.0 or later. The environment
// variable ZC_PDL (read once) chooses: "1" every family, "0" none, or a list joined by
// , or + of gemv, layer, page, split, merge; unset: gemv,layer,page. In CUDA graphs
// (the decode step's normal mode) that default measured 0.14-0.18 ms faster per
// Llama-3-8B step at batch 1 and 8 on an H100 for fp16 and ZipCache; adding merge made
// ZipCache's batch-8 step ~1 ms slower, and still ~0.1 ms slower once the split kernels
// triggered their dependents late (docs/benchmarks.md, session 10).
bool programmatic_launch_enabled(PdlKernel family);
// The families a ZC_PDL value selects, bit PdlKernel k for family k (null or empty: the
// default). Throws zc::Error naming an unknown family.
unsigned pdl_families(const char* spec);

// The integer value of environment variable `name` (the GPU path's tuning and A/B
// knobs; callers read it once): `fallback` when unset or empty. Throws zc::Error naming
// the variable unless it is an integer in [lo, hi].
int env_int(const char* name, int lo, int hi, int fallback);

// An owning, non-copyable allocation of elements of T in pinned (page-locked) host
// memory: device-to-host copies into it run at the link's rate, where a copy into
// pageable memory is staged by the driver through a pinned buffer of its own.
template <typename T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  ~PinnedBuffer() {
    if (ptr_) cudaFreeHost(ptr_);
  }
  // Reallocates (contents are lost) when n exceeds the allocation.
  void reserve(size_t n) {
    if (n <= n_) return;
    if (ptr_) cudaFreeHost(std::exchange(ptr_, nullptr));
    n_ = 0;
    void* p = nullptr;
    check(cudaMallocHost(&p, n * sizeof(T)), "cudaMallocHost");
    ptr_ = static_cast<T*>(p);
    n_ = n;
  }
  T* get() const { return ptr_; }
  size_t size() const { return n_; }

 private:
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

// An owning, move-only allocation of n elements of T in device memory.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) { resize(n); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  // Reallocates (contents are lost) unless the size is unchanged.
  void resize(size_t n) {
    if (n == n_) return;
    release();
    if (n > 0) {
      void* p = nullptr;
      check(cudaMalloc(&p, n * sizeof(T)), "cudaMalloc");
      ptr_ = static_cast<T*>(p);
      n_ = n;
    }
  }
  void upload(const T* host, size_t n) {
    resize(n);
    if (n) check(cudaMemcpy(ptr_, host, n * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  void upload(const std::vector<T>& host) { upload(host.data(), host.size()); }
  std::vector<T> download() const {
    std::vector<T> out(n_);
    if (n_) check(cudaMemcpy(out.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return out;
  }
  // Every byte set to `byte` (tests poison outputs before a kernel runs).
  void fill_bytes(int byte) {
    if (n_) check(cudaMemset(ptr_, byte, n_ * sizeof(T)), "cudaMemset");
  }

  T* get() const { return ptr_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }

 private:
  void release() noexcept {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    n_ = 0;
  }
  T* ptr_ = nullptr;
  size_t n_ = 0;
};

}  // namespace zc::cuda
