// The 16- and 8-bit number formats the CPU kernels store weights and KV in,
// and their conversions to and from fp32 (scalar, and AVX2 loads of 8).
#ifndef HYDRA_WORKER_CPU_NUMBER_FORMATS_H_
#define HYDRA_WORKER_CPU_NUMBER_FORMATS_H_

#include <immintrin.h>

#include <bit>
#include <cmath>
#include <cstdint>

namespace hydra::cpu {

// Distinct types for the two half formats, so templates can tell them apart.
struct Bf16 {
  uint16_t bits;
};
struct F16 {
  uint16_t bits;
};

inline float ToFloat(float x) { return x; }
inline float ToFloat(int8_t x) { return x; }
inline float ToFloat(Bf16 x) {
  return std::bit_cast<float>(static_cast<uint32_t>(x.bits) << 16);
}
inline float ToFloat(F16 x) {
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(x.bits)));
}

// Round to nearest even; NaN stays a (quiet) NaN.
inline Bf16 ToBf16(float x) {
  const uint32_t bits = std::bit_cast<uint32_t>(x);
  if (std::isnan(x)) return {static_cast<uint16_t>((bits >> 16) | 0x40)};
  const uint32_t rounding = 0x7fff + ((bits >> 16) & 1);
  return {static_cast<uint16_t>((bits + rounding) >> 16)};
}
inline F16 ToF16(float x) {
  return {static_cast<uint16_t>(_mm_extract_epi16(
      _mm_cvtps_ph(_mm_set_ss(x), _MM_FROUND_TO_NEAREST_INT), 0))};
}

// Eight consecutive values as fp32 lanes.
inline __m256 Load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 Load8(const Bf16* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
}
inline __m256 Load8(const F16* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 Load8(const int8_t* p) {
  const __m128i v = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

// Stores eight fp32 lanes in format T.
inline void Store8(__m256 v, float* p) { _mm256_storeu_ps(p, v); }
inline void Store8(__m256 v, F16* p) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p),
                   _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
inline void Store8(__m256 v, Bf16* p) {
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  for (int i = 0; i < 8; ++i) p[i] = ToBf16(lanes[i]);
}

}  // namespace hydra::cpu

#endif  // HYDRA_WORKER_CPU_NUMBER_FORMATS_H_
