// Safetensors files from untrusted bytes: SafetensorsFile::Open validates the
// header, then every tensor it accepted is read whole and in blocks the way
// the weight loaders read them, so an offset or a shape that slipped past
// the checks reads outside the mapping (ASan) or overflows (UBSan).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

namespace hydra::fuzz {
namespace {

// Tensors up to this many elements are converted to fp32 whole; larger ones
// (a shape with a zero somewhere can be "large") only in blocks.
constexpr int64_t kMaxReadElements = int64_t{1} << 16;

void ReadTensor(const model::Checkpoint& checkpoint,
                const model::TensorInfo& info) {
  HYDRA_FUZZ_CHECK(checkpoint.Has(info.name));
  auto dtype = checkpoint.TensorDType(info.name);
  HYDRA_FUZZ_CHECK(dtype.ok() && *dtype == info.dtype, dtype.status());
  const int64_t elements = info.num_elements();
  if (elements <= kMaxReadElements) {
    auto values = checkpoint.ReadF32(info.name, info.shape);
    HYDRA_FUZZ_CHECK(values.ok(), values.status());
    HYDRA_FUZZ_CHECK(static_cast<int64_t>(values->size()) == elements);
  }
  // The last row's second half, as a tensor-parallel rank reads its slice.
  const int64_t rows = info.shape.empty() ? 1 : info.shape[0];
  const int64_t cols = rows == 0 ? 0 : elements / rows;
  if (rows > 0 && cols <= kMaxReadElements) {
    auto block = checkpoint.ReadF32Block(info.name, info.shape, rows - 1, rows,
                                         cols / 2, cols);
    HYDRA_FUZZ_CHECK(block.ok(), block.status());
    HYDRA_FUZZ_CHECK(static_cast<int64_t>(block->size()) == cols - cols / 2);
  }
  // A block with the rows or columns reversed is refused, never read.
  HYDRA_FUZZ_CHECK(
      !checkpoint.Block(info.name, info.shape, 1, 0, 0, cols).ok());
  checkpoint.Release(info.name);
}

}  // namespace
}  // namespace hydra::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace hydra;
  fuzz::WriteScratch("model.safetensors", data, size);
  auto file =
      model::SafetensorsFile::Open(fuzz::ScratchDir() / "model.safetensors");
  auto checkpoint = model::Checkpoint::Open(fuzz::ScratchDir());
  // One verdict, whichever way the file is opened.
  HYDRA_FUZZ_CHECK(file.ok() == checkpoint.ok(), checkpoint.status());
  if (!file.ok()) return 0;
  for (const model::TensorInfo& info : (*file)->tensors()) {
    const std::span<const std::byte> bytes = (*file)->Bytes(info);
    HYDRA_FUZZ_CHECK(bytes.size() ==
                     info.num_elements() * model::DTypeSize(info.dtype));
    HYDRA_FUZZ_CHECK((*file)->Find(info.name) != nullptr);
    fuzz::ReadTensor(*checkpoint, info);
  }
  return 0;
}
