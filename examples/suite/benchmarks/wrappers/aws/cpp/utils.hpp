// Helpers shared by the C++ wrappers and benchmarks.
#ifndef SEBS_UTILS_HPP
#define SEBS_UTILS_HPP

#include <cstdint>

// Wall-clock time in microseconds since the epoch.
uint64_t timeSinceEpochMicrosec();

#endif
