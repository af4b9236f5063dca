// A small fixed pool of worker threads for data-parallel loops (attention heads,
// matrix rows). parallel_for blocks until every index is done.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace zc {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Runs fn(i) for i in [0, n), spread over the workers and the calling thread.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);

  // The process-wide pool; its size is set once by set_default_threads (-t).
  static ThreadPool& global();
  static void set_default_threads(int threads);

 private:
  void worker_loop();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(size_t)>* job_ = nullptr;
  size_t job_size_ = 0, next_ = 0, finished_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

// Shorthand for ThreadPool::global().parallel_for.
inline void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  ThreadPool::global().parallel_for(n, fn);
}

}  // namespace zc
