// Persistent thread pool for the dense kernels (no OpenMP).
//
// API (no heap allocation per call):
//   parallel_for(n_tasks, f)  calls f(int64_t task) for task in [0, n_tasks),
//                             spread over the pool; the caller thread takes part
//                             and returns once every task has finished.
//   set_num_threads(n)        n <= 0 restores the default; takes effect on next use.
//   get_num_threads()         the pool size (caller thread included); 1 inside
//                             a task or a SerialRegion (work split for the pool
//                             would run serially there, so plan for one thread).
//   parallel_for_light(n, f)  parallel_for for short jobs (up to ~100 us of
//                             work): if the workers are asleep it does not
//                             wake them -- in a 2-vCPU VM the wake-up cost the
//                             caller 7-15 us and a 100 us job took 160 us
//                             woken vs 101 us alone -- unless the previous job
//                             ended within ~120 us (a burst of calls, which
//                             then gets the whole pool from its second call).
//
// Behaviour:
//  * Default size = physical cores in the process's affinity mask
//    (sched_getaffinity + sysfs topology), else hardware_concurrency();
//    FASTDENSE_NUM_THREADS overrides it (read at first use).
//  * Workers spin ~60 us waiting for work, then sleep on a condition variable.
//  * Nested calls (f itself calling parallel_for) run serially in the caller.
//  * Several threads may call concurrently: one owns the pool, the others run
//    their tasks serially in their own thread (never block, never deadlock).
//  * fork()-safe: the child drops the parent's pool and lazily builds its own.
//  * Which thread runs which task is dynamic, so f must make results depend
//    only on the task index (the kernels do) for bitwise reproducibility.
//    The caller takes tasks from the bottom, workers from the top: with one
//    task per thread, a thread gets the same task from call to call unless
//    it is late (good for cache reuse).
#pragma once
#include <cstdint>
#include <type_traits>
#include <utility>

namespace fastdense {

void set_num_threads(int n);
int get_num_threads();

// Round-trip time (ns) of a cache line passed between this thread and a new
// one, best of three slices of ~`seconds`: what each hand-off between two
// cores costs (the pool's job start and end, a task's data written by one
// thread and read by the other).  A measurement for the benchmarks.
double cross_core_roundtrip_ns(double seconds = 0.3);

// While one is alive, parallel_for calls made by this thread run serially in
// it (for work too small to repay waking the pool); the results are the same
// as with the pool, since tasks depend only on their index.
class SerialRegion {
public:
    explicit SerialRegion(bool active = true);
    ~SerialRegion();
    SerialRegion(const SerialRegion&) = delete;
    SerialRegion& operator=(const SerialRegion&) = delete;

private:
    bool active_, was_;
};

namespace detail {
using TaskFn = void (*)(void* ctx, int64_t task);
void parallel_for_impl(int64_t n_tasks, TaskFn fn, void* ctx, bool light);

template <class F>
inline void parallel_for_(int64_t n_tasks, F&& f, bool light) {
    if (n_tasks <= 0) return;
    if (n_tasks == 1) { f(int64_t(0)); return; }
    using Fn = typename std::remove_reference<F>::type;
    parallel_for_impl(
        n_tasks,
        [](void* ctx, int64_t t) { (*static_cast<Fn*>(ctx))(t); },
        const_cast<void*>(static_cast<const void*>(&f)), light);
}
}  // namespace detail

template <class F>
inline void parallel_for(int64_t n_tasks, F&& f) {
    detail::parallel_for_(n_tasks, std::forward<F>(f), false);
}
template <class F>
inline void parallel_for_light(int64_t n_tasks, F&& f) {
    detail::parallel_for_(n_tasks, std::forward<F>(f), true);
}

// f(i0, i1) for each fixed chunk [i0, i1) of [0, n) (`chunk` long, the last
// shorter), spread over the pool.  The chunks do not depend on the thread
// count, so work done chunk by chunk gives the same bits for any split.
template <class F>
inline void parallel_chunks(int64_t n, int64_t chunk, F&& f) {
    if (n <= 0) return;
    parallel_for((n + chunk - 1) / chunk, [&](int64_t c) {
        const int64_t i0 = c * chunk;
        f(i0, n - i0 < chunk ? n : i0 + chunk);
    });
}

}  // namespace fastdense
