// fp32 -> 16-bit float rounding for writers of BF16 and F16 checkpoints.
// Both round to nearest, ties to even, as PyTorch's .to(bfloat16/float16)
// does, so a checkpoint written here holds what a Hugging Face export of the
// same fp32 values would. Reading back to fp32 is exact and lives with the
// reader (model/safetensors.cc).
#ifndef HYDRA_MODEL_HALF_FLOAT_H_
#define HYDRA_MODEL_HALF_FLOAT_H_

#include <bit>
#include <cstdint>

namespace hydra::model {

// BF16 is the top half of an fp32: add half an ulp of the kept part (minus
// one when the kept part is even, so ties go to even) and truncate. A NaN is
// kept quiet so the carry cannot turn it into an infinity.
inline uint16_t FloatToBFloat16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  }
  const uint32_t rounded = bits + 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

// IEEE binary16: 5 exponent bits (bias 15), 10 mantissa bits; values below
// 2^-14 become subnormals, values from 65520 up (halfway past the largest
// half, 65504) become infinity.
inline uint16_t FloatToHalf(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {  // NaN: quiet, with the top payload bits
    return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  }
  if (magnitude >= 0x477ff000u) return sign | 0x7c00u;  // overflow, infinity
  uint32_t kept;      // the half's bits without the sign, before rounding
  uint32_t dropped;   // the bits shifted out
  uint32_t half_ulp;  // the value of half a unit in the last kept place
  if (magnitude >= 0x38800000u) {  // normal: rebias the exponent 127 -> 15
    const uint32_t rebiased = magnitude - 0x38000000u;
    kept = rebiased >> 13;
    dropped = rebiased & 0x1fffu;
    half_ulp = 0x1000u;
  } else {
    if (magnitude <= 0x33000000u) return sign;  // at most 2^-25: rounds to 0
    // Subnormal: the significand with its implicit one, in units of 2^-24.
    const uint32_t exponent = magnitude >> 23;
    const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;  // 14..24
    kept = significand >> shift;
    dropped = significand & ((1u << shift) - 1);
    half_ulp = 1u << (shift - 1);
  }
  // A carry out of the mantissa bumps the exponent, which is what rounding
  // up to the next binade (or from the largest subnormal to 2^-14) means.
  if (dropped > half_ulp || (dropped == half_ulp && (kept & 1u))) ++kept;
  return static_cast<uint16_t>(sign | kept);
}

}  // namespace hydra::model

#endif  // HYDRA_MODEL_HALF_FLOAT_H_
