// Measures this machine's ceilings so benchmarks can report how close a
// kernel comes to them, instead of raw numbers that mean little on their own.
// Every probe uses all OpenMP threads, matching how the kernels run.
#ifndef HYDRA_BENCH_MACHINE_PROBE_H_
#define HYDRA_BENCH_MACHINE_PROBE_H_

#include <string>

namespace hydra::bench {

// Best sustained DRAM read bandwidth (GB/s, 1e9 bytes) over several passes of
// a sum-reduction of a buffer far larger than the last-level cache.
double MeasureReadBandwidthGBs();

// Best fp32 FMA throughput (GFLOP/s, an FMA counted as 2 flops) summed over
// all threads, each running independent AVX2 FMA chains.
double MeasureFmaPeakGflops();

// Best int8 dot-product throughput (GOP/s, a multiply-add counted as 2 ops)
// summed over all threads: chains of vpmaddubsw + vpmaddwd, the AVX2 int8
// dot product's two unavoidable instructions.
double MeasureInt8PeakGops();

// One line: CPU model, cores/threads, L3 size (when readable), OpenMP threads.
std::string DescribeMachine();

}  // namespace hydra::bench

#endif  // HYDRA_BENCH_MACHINE_PROBE_H_
