#include <chrono>

#include "utils.hpp"

uint64_t timeSinceEpochMicrosec()
{
	auto now = std::chrono::system_clock::now().time_since_epoch();
	return std::chrono::duration_cast<std::chrono::microseconds>(now).count();
}
