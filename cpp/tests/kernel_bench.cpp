// Kernel correctness checks (every compiled path vs the naive reference) and
// GFLOP/s timings.  Usage: kernel_bench [--check|--bench|--gemm [rounds [threads [misalign]]]|
// --peak|--small [B...]|--isa]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dense_ref.h"
#include "kernels.h"
#include "threadpool.h"

using namespace fastdense;

static std::vector<const DenseKernels*> paths() {
    std::vector<const DenseKernels*> v;
    std::string avail = available_kernels();
    for (const char* n : {"generic", "avx2", "avx512"}) {
        if (avail.find(n) == std::string::npos) continue;
        set_kernels(n);
        v.push_back(&active_kernels());
    }
    return v;
}

static double max_rel(const std::vector<float>& a, const std::vector<float>& ref) {
    double m = 0, s = 1e-30;
    for (size_t i = 0; i < a.size(); ++i) {
        m = std::max(m, double(std::fabs(a[i] - ref[i])));
        s = std::max(s, double(std::fabs(ref[i])));
    }
    return m / s;
}

static int check() {
    std::mt19937 rng(123);
    std::uniform_real_distribution<float> U(-1.f, 1.f);
    const int64_t Bs[] = {1, 3, 7, 128, 129, 300};  // 300: dW with two K blocks
    const int64_t Ns[] = {1, 5, 10, 16, 17, 64, 100, 512, 784};
    auto ps = paths();
    int fails = 0, count = 0;
    double worst = 0;
    for (int64_t B : Bs)
        for (int64_t in : Ns)
            for (int64_t out : Ns) {
                const Activation act = Activation(count % 5);
                const bool bias = (count / 5) % 2 == 0;
                const bool need_dx = (count / 10) % 2 == 0;  // dW-only backward too
                ++count;
                std::vector<float> x(B * in), w(in * out), b(out), dy(B * out);
                for (auto& v : x) v = U(rng);
                for (auto& v : w) v = U(rng) * 0.1f;
                for (auto& v : b) v = U(rng);
                for (auto& v : dy) v = U(rng);
                std::vector<float> y0(B * out), dz0 = dy, dw0(in * out), db0(out), dx0(B * in);
                dense_forward_naive(y0.data(), x.data(), w.data(), bias ? b.data() : nullptr,
                                    B, in, out, act);
                dense_backward_naive(dx0.data(), dw0.data(), bias ? db0.data() : nullptr,
                                     dz0.data(), y0.data(), x.data(), w.data(), B, in, out, act);
                for (const DenseKernels* k : ps)
                    for (int nt : {1, 2}) {
                        set_num_threads(nt);
                        std::vector<float> y(B * out, NAN), dz = dy, dw(in * out, NAN),
                            db(out, NAN), dx(B * in, NAN);
                        k->forward(y.data(), x.data(), w.data(), bias ? b.data() : nullptr, B,
                                   in, out, act);
                        // Use the reference y so backward is checked in isolation.
                        k->backward(need_dx ? dx.data() : nullptr, dw.data(),
                                    bias ? db.data() : nullptr, dz.data(), y0.data(), x.data(),
                                    w.data(), B, in, out, act);
                        double e[5] = {max_rel(y, y0), max_rel(dz, dz0), max_rel(dw, dw0),
                                       bias ? max_rel(db, db0) : 0.0,
                                       need_dx ? max_rel(dx, dx0) : 0.0};
                        double em = *std::max_element(e, e + 5);
                        if (!(em <= 2e-5)) {
                            ++fails;
                            if (fails < 20)
                                std::printf("FAIL %s nt=%d B=%ld in=%ld out=%ld act=%d bias=%d "
                                            "dx=%d y=%.2e dz=%.2e dw=%.2e db=%.2e dx=%.2e\n",
                                            k->name, nt, long(B), long(in), long(out), int(act),
                                            int(bias), int(need_dx), e[0], e[1], e[2], e[3], e[4]);
                        }
                        worst = std::max(worst, em);
                        // forward_epi: the same y, and its epilogue sees every row
                        // exactly once, already final.
                        {
                            struct Seen {
                                const float* y; const float* ref; int64_t out;
                                std::vector<int> count; int early;
                                static void fn(void* c, int64_t r0, int64_t r1) {
                                    Seen& s = *static_cast<Seen*>(c);
                                    for (int64_t r = r0; r < r1; ++r) {
                                        ++s.count[r];
                                        if (std::memcmp(s.y + r * s.out, s.ref + r * s.out,
                                                        sizeof(float) * s.out) != 0)
                                            s.early = 1;
                                    }
                                }
                            };
                            std::vector<float> ye(B * out, NAN);
                            Seen seen{ye.data(), y.data(), out, std::vector<int>(B, 0), 0};
                            k->forward_epi(ye.data(), x.data(), w.data(),
                                           bias ? b.data() : nullptr, B, in, out, act,
                                           RowsEpilogue{&Seen::fn, &seen});
                            const bool once = std::all_of(seen.count.begin(), seen.count.end(),
                                                          [](int c) { return c == 1; });
                            if (!once || seen.early ||
                                std::memcmp(ye.data(), y.data(), sizeof(float) * y.size()) != 0) {
                                ++fails;
                                std::printf("FORWARD_EPI %s nt=%d B=%ld in=%ld out=%ld once=%d "
                                            "early=%d\n", k->name, nt, long(B), long(in),
                                            long(out), int(once), seen.early);
                            }
                        }
                        // Determinism: a second run (other thread count) is bitwise equal.
                        set_num_threads(3 - nt);
                        std::vector<float> y2(B * out), dz2 = dy, dw2(in * out), db2(out, NAN),
                            dx2(B * in, NAN);
                        k->forward(y2.data(), x.data(), w.data(), bias ? b.data() : nullptr, B,
                                   in, out, act);
                        k->backward(need_dx ? dx2.data() : nullptr, dw2.data(),
                                    bias ? db2.data() : nullptr, dz2.data(), y0.data(), x.data(),
                                    w.data(), B, in, out, act);
                        auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
                            return std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
                        };
                        if (!same(y2, y) || !same(dz2, dz) || !same(dw2, dw) ||
                            !same(db2, db) || !same(dx2, dx)) {
                            ++fails;
                            std::printf("NONDETERMINISTIC %s B=%ld in=%ld out=%ld\n", k->name,
                                        long(B), long(in), long(out));
                        }
                    }
            }
    std::printf("check: %d shapes x %zu paths x {1,2} threads, worst rel err %.2e, %d failures\n",
                count, ps.size(), worst, fails);
    return fails ? 1 : 0;
}

// Small batches (the unpacked GEMV forward, B <= 16, and the narrow kernel's
// short row tiles): every B in 1..16 on
// shapes with partial vectors, several K blocks and a K block split between
// threads; vs the reference, and bitwise equal to the same rows computed in a
// large batch (packed GEMM path) for 1 and 2 threads.
static int check_small_batch() {
    std::mt19937 rng(77);
    std::uniform_real_distribution<float> U(-1.f, 1.f);
    const int64_t ins[] = {1, 7, 193, 385, 784, 1000};
    const int64_t outs[] = {10, 16, 17, 40, 100, 512, 1000};
    const int64_t BIG = 40;
    auto ps = paths();
    int fails = 0, count = 0;
    double worst = 0;
    for (int64_t in : ins)
        for (int64_t out : outs) {
            std::vector<float> x(BIG * in), w(in * out), b(out);
            for (auto& v : x) v = U(rng);
            for (auto& v : w) v = U(rng) * 0.1f;
            for (auto& v : b) v = U(rng);
            for (int64_t B = 1; B <= 16; ++B) {
                const Activation act = Activation(count % 5);
                const bool bias = count % 3 != 0;
                ++count;
                std::vector<float> y0(B * out), dy(B * out), dz0, dw0(in * out), db0(out),
                    dx0(B * in);
                for (auto& v : dy) v = U(rng);
                dz0 = dy;
                dense_forward_naive(y0.data(), x.data(), w.data(), bias ? b.data() : nullptr,
                                    B, in, out, act);
                dense_backward_naive(dx0.data(), dw0.data(), bias ? db0.data() : nullptr,
                                     dz0.data(), y0.data(), x.data(), w.data(), B, in, out, act);
                for (const DenseKernels* k : ps) {
                    std::vector<float> ybig(BIG * out);
                    set_num_threads(2);
                    k->forward(ybig.data(), x.data(), w.data(), bias ? b.data() : nullptr, BIG,
                               in, out, act);
                    for (int nt : {1, 2}) {
                        set_num_threads(nt);
                        std::vector<float> y(B * out, NAN), dz = dy, dw(in * out, NAN),
                            db(out, NAN), dx(B * in, NAN);
                        k->forward(y.data(), x.data(), w.data(), bias ? b.data() : nullptr, B,
                                   in, out, act);
                        k->backward(dx.data(), dw.data(), bias ? db.data() : nullptr, dz.data(),
                                    y0.data(), x.data(), w.data(), B, in, out, act);
                        double e[5] = {max_rel(y, y0), max_rel(dz, dz0), max_rel(dw, dw0),
                                       bias ? max_rel(db, db0) : 0.0, max_rel(dx, dx0)};
                        double em = *std::max_element(e, e + 5);
                        worst = std::max(worst, em);
                        const bool same = std::memcmp(y.data(), ybig.data(),
                                                      sizeof(float) * B * out) == 0;
                        if (!(em <= 2e-5) || !same) {
                            ++fails;
                            if (fails < 20)
                                std::printf("FAIL small-batch %s nt=%d B=%ld in=%ld out=%ld act=%d "
                                            "bias=%d y=%.2e dz=%.2e dw=%.2e db=%.2e dx=%.2e "
                                            "batch-bitwise=%d\n",
                                            k->name, nt, long(B), long(in), long(out), int(act),
                                            int(bias), e[0], e[1], e[2], e[3], e[4], int(same));
                        }
                    }
                }
            }
        }
    std::printf("small-batch: %d shapes (B 1..16) x %zu paths x {1,2} threads, worst rel err "
                "%.2e, bitwise equal to large-batch rows, %d failures\n",
                count, ps.size(), worst, fails);
    return fails ? 1 : 0;
}

// Several threads calling kernels at once, fork() with a live pool, nesting.
static int check_misc() {
    int fails = 0;
    const int64_t B = 128, in = 784, out = 512;
    std::vector<float> x(B * in), w(in * out), y0(B * out);
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> U(-1.f, 1.f);
    for (auto& v : x) v = U(rng);
    for (auto& v : w) v = U(rng) * 0.05f;
    set_num_threads(2);
    const DenseKernels& k = active_kernels();
    k.forward(y0.data(), x.data(), w.data(), nullptr, B, in, out, Activation::Relu);
    std::vector<std::thread> ts;
    std::vector<int> bad(4, 0);
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&, t] {
            std::vector<float> y(B * out);
            for (int it = 0; it < 20; ++it) {
                k.forward(y.data(), x.data(), w.data(), nullptr, B, in, out, Activation::Relu);
                if (y != y0) bad[t] = 1;
            }
        });
    for (auto& t : ts) t.join();
    for (int b : bad) fails += b;
    // Nested parallel_for runs serially.
    std::vector<float> yn(B * out);
    parallel_for(2, [&](int64_t t) {
        if (t == 0) k.forward(yn.data(), x.data(), w.data(), nullptr, B, in, out, Activation::Relu);
    });
    fails += yn != y0;
    // fork() while the pool exists: the child builds its own pool.
    pid_t pid = fork();
    if (pid == 0) {
        std::vector<float> y(B * out);
        k.forward(y.data(), x.data(), w.data(), nullptr, B, in, out, Activation::Relu);
        _exit(y == y0 && get_num_threads() == 2 ? 0 : 1);
    }
    int st = 0;
    for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) == 0; ++i) usleep(50000);
    if (waitpid(pid, &st, WNOHANG) == 0) { kill(pid, 9); waitpid(pid, &st, 0); st = 1; std::printf("fork child hung\n"); }
    fails += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    std::printf("misc (%s): concurrent callers, nesting, fork: %d failures\n", k.name, fails);
    return fails;
}

// Best single-call time (us) over 200 calls after warm-up: the machine may be
// shared, and the minimum is the least perturbed estimate.
template <class F>
static double time_us(F&& f) {
    // Warm up for >= 30 ms so caches, the pool and the scheduler settle.
    const auto w0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 10 || std::chrono::steady_clock::now() - w0 < std::chrono::milliseconds(30); ++i) f();
    double best = 1e30;
    for (int rep = 0; rep < 200; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        f();
        auto t1 = std::chrono::steady_clock::now();
        best = std::min(best, std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    return best;
}

static void bench() {
    struct Shape { int64_t B, in, out; Activation act; };
    const Shape shapes[] = {{128, 784, 512, Activation::Relu}, {128, 512, 10, Activation::Softmax}};
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> U(-1.f, 1.f);
    for (const DenseKernels* k : paths())
        for (int nt : {1, 2}) {
            set_num_threads(nt);
            for (const Shape& s : shapes) {
                std::vector<float> x(s.B * s.in), w(s.in * s.out), b(s.out), y(s.B * s.out),
                    dz(s.B * s.out), dw(s.in * s.out), db(s.out), dx(s.B * s.in);
                for (auto& v : x) v = U(rng);
                for (auto& v : w) v = U(rng) * 0.05f;
                for (auto& v : b) v = U(rng);
                const double gf = 2.0 * s.B * s.in * s.out * 1e-3;  // GFLOP/s with us
                double tf = time_us([&] {
                    k->forward(y.data(), x.data(), w.data(), b.data(), s.B, s.in, s.out, s.act);
                });
                double tw = time_us([&] {  // dW (+db, act') only
                    k->backward(nullptr, dw.data(), db.data(), dz.data(), y.data(), x.data(),
                                w.data(), s.B, s.in, s.out, Activation::Linear);
                });
                double tb = time_us([&] {
                    k->backward(dx.data(), dw.data(), db.data(), dz.data(), y.data(), x.data(),
                                w.data(), s.B, s.in, s.out, Activation::Linear);
                });
                std::printf("%-7s nt=%d %4ldx%4ldx%4ld  fwd %7.1f us %6.1f GF/s | dW %7.1f us "
                            "%6.1f GF/s | dW+dX %7.1f us %6.1f GF/s (dX ~%6.1f GF/s)\n",
                            k->name, nt, long(s.B), long(s.in), long(s.out), tf, gf / tf, tw,
                            gf / tw, tb, 2 * gf / tb, gf / std::max(1e-3, tb - tw));
            }
        }
}

// The training GEMMs of the MNIST step on every SIMD path with `nt` threads,
// `rounds` rounds (each op timed by time_us), then the per-op medians, in
// GFLOP/s and % of the path's FMA peak (measured first, same thread count).
// dX = dZ.W^T has no entry point of its own: its time is dW+dX minus dW.
// A float array inside a padded vector (begin/end for range-for, data()).
struct Span {
    float* p; int64_t n;
    float* data() const { return p; }
    float* begin() const { return p; }
    float* end() const { return p + n; }
};

static void bench_gemm(int nt, int rounds, int misalign) {
    struct Shape { int64_t B, in, out; Activation act; };
    const Shape shapes[] = {{128, 784, 512, Activation::Relu}, {128, 512, 10, Activation::Softmax}};
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> U(-1.f, 1.f);
    set_num_threads(nt);
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    for (const DenseKernels* k : paths()) {
        if (std::strcmp(k->name, "generic") == 0) continue;
        const double peak = k->fma_peak_gflops(nt);
        std::printf("%s, %d thread(s): FMA peak %.1f GFLOP/s, arrays %d bytes past 64-byte "
                    "alignment\n", k->name, nt, peak, misalign);
        for (const Shape& s : shapes) {
            // Every array starts `misalign` bytes past a 64-byte boundary.
            std::vector<std::vector<float>> store;
            auto arr = [&](int64_t n) {
                store.emplace_back(size_t(n + 32));
                float* p = store.back().data();
                const uintptr_t at = reinterpret_cast<uintptr_t>(p);
                p += ((64 - at % 64) % 64 + misalign) / sizeof(float);
                return Span{p, n};
            };
            Span x = arr(s.B * s.in), w = arr(s.in * s.out), b = arr(s.out), y = arr(s.B * s.out),
                 dz = arr(s.B * s.out), dw = arr(s.in * s.out), db = arr(s.out), dx = arr(s.B * s.in);
            for (auto& v : x) v = U(rng);
            for (auto& v : w) v = U(rng) * 0.05f;
            for (auto& v : b) v = U(rng);
            for (auto& v : dz) v = U(rng);
            const double gf = 2.0 * s.B * s.in * s.out * 1e-3;  // GFLOP/s with us
            std::vector<double> f, dW, dX;
            for (int r = 0; r < rounds; ++r) {
                const double tf = time_us([&] {
                    k->forward(y.data(), x.data(), w.data(), b.data(), s.B, s.in, s.out, s.act);
                });
                const double tw = time_us([&] {
                    k->backward(nullptr, dw.data(), db.data(), dz.data(), y.data(), x.data(),
                                w.data(), s.B, s.in, s.out, Activation::Linear);
                });
                const double tb = time_us([&] {
                    k->backward(dx.data(), dw.data(), db.data(), dz.data(), y.data(), x.data(),
                                w.data(), s.B, s.in, s.out, Activation::Linear);
                });
                f.push_back(gf / tf);
                dW.push_back(gf / tw);
                dX.push_back(gf / std::max(1e-3, tb - tw));
                std::printf("  %4ldx%4ldx%4ld round %d: fwd %6.1f  dW %6.1f  dX %6.1f GF/s "
                            "(%.1f / %.1f / %.1f us, dW+dX %.1f us)\n", long(s.B), long(s.in),
                            long(s.out), r, f.back(), dW.back(), dX.back(), tf, tw, tb - tw, tb);
            }
            const double mf = median(f), mw = median(dW), mx = median(dX);
            std::printf("%-7s nt=%d %4ldx%4ldx%4ld median: fwd %6.1f GF/s %3.0f%% | dW %6.1f GF/s "
                        "%3.0f%% | dX %6.1f GF/s %3.0f%%\n", k->name, nt, long(s.B), long(s.in),
                        long(s.out), mf, 100 * mf / peak, mw, 100 * mw / peak, mx, 100 * mx / peak);
        }
    }
}

// Small-batch forward latency: the MNIST predict of B samples (784->512 relu,
// 512->10 softmax), back to back ("hot") and after 1 ms of idle ("idle", the
// pool's workers asleep); median of the per-call times.
static void bench_small(const std::vector<int64_t>& Bs) {
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> U(-1.f, 1.f);
    const int64_t in = 784, hid = 512, out = 10, Bmax = 64;
    std::vector<float> x(Bmax * in), w1(in * hid), b1(hid), w2(hid * out), b2(out),
        h(Bmax * hid), y(Bmax * out);
    for (auto& v : x) v = U(rng);
    for (auto& v : w1) v = U(rng) * 0.05f;
    for (auto& v : w2) v = U(rng) * 0.05f;
    for (auto& v : b1) v = U(rng);
    for (auto& v : b2) v = U(rng);
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    for (const DenseKernels* k : paths())
        for (int nt : {1, 2}) {
            set_num_threads(nt);
            for (int64_t B : Bs) {
                auto f = [&] {
                    k->forward(h.data(), x.data(), w1.data(), b1.data(), B, in, hid,
                               Activation::Relu);
                    k->forward(y.data(), h.data(), w2.data(), b2.data(), B, hid, out,
                               Activation::Softmax);
                };
                std::vector<double> hot, idle;
                for (int i = 0; i < 2000; ++i) f();
                for (int i = 0; i < 2000; ++i) {
                    auto t0 = std::chrono::steady_clock::now();
                    f();
                    hot.push_back(std::chrono::duration<double, std::micro>(
                                      std::chrono::steady_clock::now() - t0).count());
                }
                for (int i = 0; i < 300; ++i) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                    auto t0 = std::chrono::steady_clock::now();
                    f();
                    idle.push_back(std::chrono::duration<double, std::micro>(
                                       std::chrono::steady_clock::now() - t0).count());
                }
                std::printf("%-7s nt=%d predict B=%2ld (784-512-10): hot %7.2f us  after 1 ms idle "
                            "%7.2f us (min %6.2f / %6.2f)\n", k->name, nt, long(B), median(hot), median(idle), *std::min_element(hot.begin(), hot.end()), *std::min_element(idle.begin(), idle.end()));
            }
        }
}

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "--isa") {  // what dispatch picks (honours FASTDENSE_ISA)
        std::printf("active=%s available=%s threads=%d\n", active_kernels().name,
                    available_kernels(), get_num_threads());
        return 0;
    }
    if (mode == "--peak") {  // FMA peak of every path, 1 and 2 threads
        for (const DenseKernels* k : paths())
            for (int nt : {1, 2}) {
                set_num_threads(nt);
                std::printf("%-7s FMA peak %d thread(s): %7.1f GFLOP/s\n", k->name, nt,
                            k->fma_peak_gflops(nt));
            }
        return 0;
    }
    if (mode == "--gemm") {  // [rounds [threads]]
        const int mis = argc > 4 ? std::atoi(argv[4]) : 0;
        if (mis < 0 || mis > 60 || mis % 4) {
            std::fprintf(stderr, "--gemm: misalign must be a multiple of 4 in [0, 60]\n");
            return 2;
        }
        bench_gemm(argc > 3 ? std::atoi(argv[3]) : 2, argc > 2 ? std::atoi(argv[2]) : 5, mis);
        return 0;
    }
    if (mode == "--small") {
        std::vector<int64_t> Bs;
        for (int i = 2; i < argc; ++i) Bs.push_back(std::atoll(argv[i]));
        if (Bs.empty()) Bs = {1, 2, 4, 8, 16};
        bench_small(Bs);
        return 0;
    }
    int rc = 0;
    if (mode != "--bench") rc = check() | check_small_batch() | check_misc();
    if (mode != "--check") bench();
    return rc;
}
