#include "core/thread_pool.h"

#include <algorithm>
#include <memory>

namespace zc {

ThreadPool::ThreadPool(int threads) {
  const int extra = std::max(0, threads - 1);
  for (int i = 0; i < extra; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::worker_loop() {
  uint64_t seen = 0;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    while (job_ && next_ < job_size_) {
      const size_t i = next_++;
      const auto* job = job_;
      lock.unlock();
      (*job)(i);
      lock.lock();
      if (++finished_ == job_size_) done_.notify_all();
    }
  }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (workers_.empty() || n == 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  // Nested calls from inside a job run inline: the pool is busy with the outer loop.
  if (job_ != nullptr) {
    lock.unlock();
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  job_ = &fn;
  job_size_ = n;
  next_ = 0;
  finished_ = 0;
  ++generation_;
  wake_.notify_all();
  while (next_ < job_size_) {
    const size_t i = next_++;
    lock.unlock();
    fn(i);
    lock.lock();
    ++finished_;
  }
  done_.wait(lock, [&] { return finished_ == job_size_; });
  job_ = nullptr;
}

namespace {
int g_default_threads = 0;
std::unique_ptr<ThreadPool>& global_slot() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}
std::mutex g_global_mutex;
}  // namespace

ThreadPool& ThreadPool::global() {
  std::lock_guard<std::mutex> lock(g_global_mutex);
  auto& pool = global_slot();
  if (!pool) {
    int n = g_default_threads > 0 ? g_default_threads
                                  : static_cast<int>(std::thread::hardware_concurrency());
    pool = std::make_unique<ThreadPool>(std::max(1, n));
  }
  return *pool;
}

void ThreadPool::set_default_threads(int threads) {
  std::lock_guard<std::mutex> lock(g_global_mutex);
  g_default_threads = threads;
  global_slot().reset();
}

}  // namespace zc
