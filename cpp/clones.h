// FD_CLONES: a loop function compiled for AVX-512, AVX2 and the baseline and
// picked at load time (GCC/Clang target_clones on x86-64 Linux; elsewhere a
// plain function).  Loops written branch-free with restrict pointers
// vectorize in each clone; with -ffp-contract=off (CMake passes it to the
// engine) and no reassociation, every clone gives the same bits.
#pragma once

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(_M_X64)) && \
    defined(__linux__) && !defined(FASTDENSE_NO_CLONES)
#define FD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FD_CLONES
#endif
