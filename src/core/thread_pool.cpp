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

ThreadPool::Job* ThreadPool::open_job() {
  for (auto it = jobs_.rbegin(); it != jobs_.rend(); ++it)
    if ((*it)->next < (*it)->size) return *it;
  return nullptr;
}

void ThreadPool::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    Job* job = open_job();
    if (job == nullptr) {
      if (stop_) return;
      ++idle_;
      wake_.wait(lock);
      --idle_;
      continue;
    }
    run(*job, job->next++, lock);
  }
}

void ThreadPool::run(Job& job, size_t i, std::unique_lock<std::mutex>& lock) {
  lock.unlock();
  std::exception_ptr error;
  try {
    (*job.fn)(i);
  } catch (...) {
    error = std::current_exception();
  }
  lock.lock();
  if (error && !job.error) job.error = error;
  if (++job.finished == job.size) done_.notify_all();
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  std::unique_lock<std::mutex> lock(mutex_);
  // No worker to share with (a pool of one, or every worker busy with the loops around
  // this one): inline, without a job's bookkeeping.
  if (workers_.empty() || n == 1 || (idle_ == 0 && !jobs_.empty())) {
    lock.unlock();
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  Job job{&fn, n, 0, 0, nullptr};
  jobs_.push_back(&job);
  wake_.notify_all();
  while (job.next < job.size) run(job, job.next++, lock);
  // Every index is handed out; wait for the workers' (no worker touches the job after
  // its last index is counted).
  done_.wait(lock, [&] { return job.finished == job.size; });
  jobs_.erase(std::find(jobs_.begin(), jobs_.end(), &job));
  if (job.error) std::rethrow_exception(job.error);
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
