// Key-value storage for C++ benchmarks whose config.json lists the "nosql"
// module (SeBS compiles key-value.cpp then).  SeBS's wrapper talks to DynamoDB
// through the AWS SDK for C++, which Debian does not package; this is a stub
// with the same shape that compiles without it and fails every call: no
// benchmark of the example suite uses nosql from C++.
#ifndef SEBS_KEY_VALUE_HPP
#define SEBS_KEY_VALUE_HPP

#include <cstdint>
#include <string>

class KeyValue {
public:
	KeyValue() = default;

	// The read time in microseconds; 0 on failure.
	uint64_t download_file(std::string const &table, std::string const &key, int &required_retries,
			       double &read_units, bool with_backoff = false);

	// The write time in microseconds; 0 on failure.
	uint64_t upload_file(std::string const &table, std::string const &key, double &write_units, int size,
			     unsigned char *data);
};

#endif
