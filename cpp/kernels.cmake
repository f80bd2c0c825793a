# Dense-kernel fragment: include() it from the top-level CMakeLists.txt, then
#   target_link_libraries(_core PRIVATE fastdense_kernels)
# Defines:
#   FASTDENSE_KERNEL_SOURCES  baseline-flag sources (generic path, pool, dispatch)
#   fastdense_kernels         STATIC, PIC library with everything; the x86 SIMD
#                             sources get their ISA flags per source only.
set(_FD_KDIR ${CMAKE_CURRENT_LIST_DIR})

set(FASTDENSE_KERNEL_SOURCES
    ${_FD_KDIR}/dense_generic.cpp
    ${_FD_KDIR}/fused_update.cpp
    ${_FD_KDIR}/threadpool.cpp
    ${_FD_KDIR}/dispatch.cpp)

set(_FD_X86 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|X86_64|AMD64|amd64|x64|i[3-6]86|x86)$")
  set(_FD_X86 ON)
endif()
if(APPLE AND CMAKE_OSX_ARCHITECTURES)
  # Universal / cross builds: only add SIMD sources for a pure x86_64 build.
  if(NOT CMAKE_OSX_ARCHITECTURES STREQUAL "x86_64")
    set(_FD_X86 OFF)
  endif()
endif()

set(_FD_SIMD_SOURCES)
if(_FD_X86 AND NOT MSVC)
  set(_FD_SIMD_SOURCES ${_FD_KDIR}/dense_avx2.cpp ${_FD_KDIR}/dense_avx512.cpp)
  set_source_files_properties(${_FD_KDIR}/dense_avx2.cpp PROPERTIES
      COMPILE_OPTIONS "-mavx2;-mfma")
  option(FASTDENSE_EMULATE_AVX512
         "Test builds: run the avx512 path on AVX2 hardware (intrinsics emulated)" OFF)
  if(FASTDENSE_EMULATE_AVX512)
    set_source_files_properties(${_FD_KDIR}/dense_avx512.cpp ${_FD_KDIR}/dispatch.cpp PROPERTIES
        COMPILE_DEFINITIONS FASTDENSE_EMULATE_AVX512)
    set_source_files_properties(${_FD_KDIR}/dense_avx512.cpp PROPERTIES
        COMPILE_OPTIONS "-mavx2;-mfma")
  else()
    set_source_files_properties(${_FD_KDIR}/dense_avx512.cpp PROPERTIES
        COMPILE_OPTIONS "-mavx512f;-mavx512bw;-mavx512dq;-mavx512vl;-mavx2;-mfma")
  endif()
  set_source_files_properties(${_FD_KDIR}/dense_avx2.cpp ${_FD_KDIR}/dense_avx512.cpp
      PROPERTIES OBJECT_DEPENDS ${_FD_KDIR}/dense_simd.inc)
  # Keep the ISA objects out of LTO so no AVX code can be merged or inlined
  # into baseline code at link time (CMAKE_INTERPROCEDURAL_OPTIMIZATION=ON is
  # fine for everything else).
  set_property(SOURCE ${_FD_KDIR}/dense_avx2.cpp ${_FD_KDIR}/dense_avx512.cpp
      APPEND PROPERTY COMPILE_OPTIONS "-fno-lto")
endif()

find_package(Threads REQUIRED)
add_library(fastdense_kernels STATIC ${FASTDENSE_KERNEL_SOURCES} ${_FD_SIMD_SOURCES})
target_include_directories(fastdense_kernels PUBLIC ${_FD_KDIR})
target_compile_features(fastdense_kernels PUBLIC cxx_std_17)
set_target_properties(fastdense_kernels PROPERTIES POSITION_INDEPENDENT_CODE ON)
target_link_libraries(fastdense_kernels PUBLIC Threads::Threads)
if(NOT MSVC)
  # -O3 for the kernels even in RelWithDebInfo/Debug-less builds; never
  # -march=native / -Ofast / -ffast-math (results must match the reference).
  target_compile_options(fastdense_kernels PRIVATE
      $<$<NOT:$<CONFIG:Debug>>:-O3> -fno-fast-math)
endif()

if(NOT MSVC)
  # The fused optimizer step rounds each operation as the engine's update does.
  set_property(SOURCE ${_FD_KDIR}/fused_update.cpp APPEND PROPERTY COMPILE_OPTIONS
      -fno-math-errno)
  # The portable path rounds a*b+c twice, as the engine does (fastdense_engine
  # sets the same), whatever the compiler's default: GCC's is off for
  # -std=c++17, Clang's contracts within an expression, and where FMA is part
  # of the base ISA (aarch64) that gave other bits, e.g. a fused optimizer
  # step unlike the separate one (seen with Clang for aarch64 under qemu:
  # tools/arm_pytest.sh).  x86's baseline has no FMA: nothing changes there.
  # (The SIMD sources keep their explicit FMAs and vopaque().)
  set_property(SOURCE ${FASTDENSE_KERNEL_SOURCES} APPEND PROPERTY COMPILE_OPTIONS
      -ffp-contract=off)
endif()

# Profiling builds (tools/region_profile.sh): the pool times each parallel
# region and writes the totals to stderr at exit.  Never on in the package.
option(FASTDENSE_PROFILE_REGIONS "Profiling builds: per-region wall times at exit" OFF)
if(FASTDENSE_PROFILE_REGIONS)
  set_property(SOURCE ${_FD_KDIR}/threadpool.cpp APPEND PROPERTY COMPILE_DEFINITIONS
      FASTDENSE_PROFILE_REGIONS)
  target_link_libraries(fastdense_kernels PUBLIC ${CMAKE_DL_LIBS})
endif()
