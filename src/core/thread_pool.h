// A small fixed pool of worker threads for data-parallel loops (attention heads,
// matrix rows, a vocabulary's chunks). parallel_for blocks until every index is done.
// Loops may nest and may come from several threads at once: each call is an open job
// the idle workers take indices from (the newest job first), and its caller works on
// it too; a nested call when no worker is idle runs inline.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <exception>
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
  // Runs fn(i) for i in [0, n), spread over the workers and the calling thread. An
  // exception from fn is rethrown here once every index has run.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);

  // The process-wide pool; its size is set once by set_default_threads (-t).
  static ThreadPool& global();
  static void set_default_threads(int threads);

 private:
  struct Job {
    const std::function<void(size_t)>* fn;
    size_t size;
    size_t next = 0, finished = 0;  // indices handed out / done (under mutex_)
    std::exception_ptr error;       // the first index's exception (under mutex_)
  };
  // Runs index i of job (mutex_ held on entry and exit, released meanwhile).
  void run(Job& job, size_t i, std::unique_lock<std::mutex>& lock);
  void worker_loop();
  Job* open_job();  // the newest job with an index left, or null (under mutex_)

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<Job*> jobs_;  // open jobs, oldest first
  int idle_ = 0;            // workers waiting for a job
  bool stop_ = false;
};

// Shorthand for ThreadPool::global().parallel_for.
inline void parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  ThreadPool::global().parallel_for(n, fn);
}

}  // namespace zc
