// A heap array aligned for vector loads (64 bytes: one cache line, wide
// enough for AVX-512). Move-only; owns its memory. Large arrays (weights)
// are aligned to 2 MiB and asked to be backed by transparent huge pages:
// decode streams every weight once per token, and 4 KiB pages would cost a
// TLB miss every 4 KiB of that stream (and a page fault each at load).
#ifndef HYDRA_WORKER_CPU_ALIGNED_BUFFER_H_
#define HYDRA_WORKER_CPU_ALIGNED_BUFFER_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

namespace hydra::cpu {

template <typename T>
class AlignedBuffer {
 public:
  static constexpr size_t kAlignment = 64;
  static constexpr size_t kHugePageBytes = size_t(2) << 20;

  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t size) : size_(size) {
    const bool huge = size * sizeof(T) >= kHugePageBytes;
    const size_t alignment = huge ? kHugePageBytes : kAlignment;
    size_t bytes = (size * sizeof(T) + alignment - 1) / alignment * alignment;
    void* p = std::aligned_alloc(alignment, bytes == 0 ? alignment : bytes);
    if (p == nullptr) throw std::bad_alloc();
    if (huge) ::madvise(p, bytes, MADV_HUGEPAGE);  // a hint; may be refused
    std::memset(p, 0, bytes);
    data_.reset(static_cast<T*>(p));
  }

  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return data_.get()[i]; }
  const T& operator[](size_t i) const { return data_.get()[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
  size_t size_ = 0;
};

}  // namespace hydra::cpu

#endif  // HYDRA_WORKER_CPU_ALIGNED_BUFFER_H_
