// Test builds only (CMake option FASTDENSE_EMULATE_AVX512): the AVX-512
// intrinsics dense_simd.inc uses, emulated with pairs of AVX2 vectors, so the
// 16-lane path (MR = 8, NR = 32 tiles, 16-bit lane masks) runs -- slowly --
// on a machine without AVX-512 and every test can check its logic.
// Included inside dense_avx512.cpp's namespace, before dense_simd.inc: these
// declarations hide the real ones for that file only.  Lane order and IEEE
// results per lane are those of the real instructions; horizontal reductions
// sum in a tree of their own.
#pragma once

struct __m512 { __m256 lo, hi; };
struct __m512i { __m256i lo, hi; };

static inline __m256i emu_lanes(unsigned k) {  // all-ones in the lanes of k's 8 bits
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(int(k)), bit), bit);
}
static inline __m512 _mm512_setzero_ps() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
static inline __m512 _mm512_set1_ps(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
static inline __m512 _mm512_loadu_ps(const void* p) {
    const float* f = static_cast<const float*>(p);
    return {_mm256_loadu_ps(f), _mm256_loadu_ps(f + 8)};
}
static inline void _mm512_storeu_ps(void* p, __m512 a) {
    float* f = static_cast<float*>(p);
    _mm256_storeu_ps(f, a.lo);
    _mm256_storeu_ps(f + 8, a.hi);
}
static inline __m512 _mm512_maskz_loadu_ps(__mmask16 k, const void* p) {  // (no fault in off lanes)
    const float* f = static_cast<const float*>(p);
    return {_mm256_maskload_ps(f, emu_lanes(k & 0xFF)), _mm256_maskload_ps(f + 8, emu_lanes(k >> 8))};
}
static inline void _mm512_mask_storeu_ps(void* p, __mmask16 k, __m512 a) {
    float* f = static_cast<float*>(p);
    _mm256_maskstore_ps(f, emu_lanes(k & 0xFF), a.lo);
    _mm256_maskstore_ps(f + 8, emu_lanes(k >> 8), a.hi);
}
#define FD_EMU_BIN(name, op)                                                   \
    static inline __m512 name(__m512 a, __m512 b) { return {op(a.lo, b.lo), op(a.hi, b.hi)}; }
FD_EMU_BIN(_mm512_add_ps, _mm256_add_ps)
FD_EMU_BIN(_mm512_sub_ps, _mm256_sub_ps)
FD_EMU_BIN(_mm512_mul_ps, _mm256_mul_ps)
FD_EMU_BIN(_mm512_div_ps, _mm256_div_ps)
FD_EMU_BIN(_mm512_max_ps, _mm256_max_ps)
FD_EMU_BIN(_mm512_min_ps, _mm256_min_ps)
#undef FD_EMU_BIN
static inline __m512 _mm512_sqrt_ps(__m512 a) { return {_mm256_sqrt_ps(a.lo), _mm256_sqrt_ps(a.hi)}; }
static inline __m512 _mm512_fmadd_ps(__m512 a, __m512 b, __m512 c) {
    return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
static inline __m512 _mm512_mask_max_ps(__m512 src, __mmask16 k, __m512 a, __m512 b) {
    const __m512 m = _mm512_max_ps(a, b);
    return {_mm256_blendv_ps(src.lo, m.lo, _mm256_castsi256_ps(emu_lanes(k & 0xFF))),
            _mm256_blendv_ps(src.hi, m.hi, _mm256_castsi256_ps(emu_lanes(k >> 8)))};
}
static inline __m512 _mm512_mask_mov_ps(__m512 src, __mmask16 k, __m512 a) {
    return {_mm256_blendv_ps(src.lo, a.lo, _mm256_castsi256_ps(emu_lanes(k & 0xFF))),
            _mm256_blendv_ps(src.hi, a.hi, _mm256_castsi256_ps(emu_lanes(k >> 8)))};
}
static inline __m512 _mm512_maskz_mov_ps(__mmask16 k, __m512 a) {
    return {_mm256_and_ps(a.lo, _mm256_castsi256_ps(emu_lanes(k & 0xFF))),
            _mm256_and_ps(a.hi, _mm256_castsi256_ps(emu_lanes(k >> 8)))};
}
template <int P>
static inline __mmask16 emu_cmp_ps_mask(__m512 a, __m512 b) {
    return __mmask16(unsigned(_mm256_movemask_ps(_mm256_cmp_ps(a.lo, b.lo, P))) |
                     unsigned(_mm256_movemask_ps(_mm256_cmp_ps(a.hi, b.hi, P))) << 8);
}
#undef _mm512_cmp_ps_mask
#define _mm512_cmp_ps_mask(a, b, p) emu_cmp_ps_mask<p>(a, b)
#undef _mm512_roundscale_ps
#define _mm512_roundscale_ps(a, mode) emu_round_nearest(a)
static inline __m512 emu_round_nearest(__m512 a) {
    constexpr int m = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    return {_mm256_round_ps(a.lo, m), _mm256_round_ps(a.hi, m)};
}
static inline float _mm512_reduce_add_ps(__m512 a) {
    __m256 s = _mm256_add_ps(a.lo, a.hi);
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline float _mm512_reduce_max_ps(__m512 a) {
    __m256 s = _mm256_max_ps(a.lo, a.hi);
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline __m512i _mm512_set1_epi32(int x) { return {_mm256_set1_epi32(x), _mm256_set1_epi32(x)}; }
static inline __m512i _mm512_add_epi32(__m512i a, __m512i b) {
    return {_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)};
}
static inline __m512i _mm512_cvtps_epi32(__m512 a) {
    return {_mm256_cvtps_epi32(a.lo), _mm256_cvtps_epi32(a.hi)};
}
static inline __m512i _mm512_slli_epi32(__m512i a, unsigned n) {
    return {_mm256_slli_epi32(a.lo, int(n)), _mm256_slli_epi32(a.hi, int(n))};
}
static inline __m512 _mm512_castsi512_ps(__m512i a) {
    return {_mm256_castsi256_ps(a.lo), _mm256_castsi256_ps(a.hi)};
}
// vopaque(): an empty asm on each half (the products stay unfused)
static inline __m512 emu_opaque(__m512 a) {
    __asm__("" : "+x"(a.lo), "+x"(a.hi));
    return a;
}
