// A float vector whose data starts on a 64-byte (cache-line) boundary.
// The engine's flat parameter, gradient and optimizer-state buffers use it:
// the first layer's kernel then starts a cache line, so each 16-float strip
// the forward GEMM packs from a 512-wide row is one line, not two (AVX2
// kernel_bench --gemm, 1 thread, 128x784x512 forward, 3 interleaved rounds
// on the Zen 3 VM: 85.9-87.6 GFLOP/s aligned, 83.6-85.2 at 16 bytes past,
// where std::vector's large blocks start).
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace fastdense {

template <class T>
struct CacheAlignedAllocator {
    using value_type = T;
    static constexpr std::align_val_t kAlign{64};
    CacheAlignedAllocator() noexcept = default;
    template <class U>
    CacheAlignedAllocator(const CacheAlignedAllocator<U>&) noexcept {}
    T* allocate(std::size_t n) {
        if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
        return static_cast<T*>(::operator new(n * sizeof(T), kAlign));
    }
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, kAlign); }
    template <class U>
    bool operator==(const CacheAlignedAllocator<U>&) const noexcept { return true; }
    template <class U>
    bool operator!=(const CacheAlignedAllocator<U>&) const noexcept { return false; }
};

using FloatBuffer = std::vector<float, CacheAlignedAllocator<float>>;

}  // namespace fastdense
