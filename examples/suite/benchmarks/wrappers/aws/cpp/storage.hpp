// Object storage for C++ benchmarks whose config.json lists the "storage"
// module (SeBS compiles storage.cpp then).  SeBS's wrapper talks to S3 through
// the AWS SDK for C++, which Debian does not package; this is a stub with the
// same shape that compiles without it and fails every call: no benchmark of the
// example suite uses storage from C++.
#ifndef SEBS_STORAGE_HPP
#define SEBS_STORAGE_HPP

#include <cstddef>
#include <cstdint>
#include <string>
#include <tuple>

namespace sebs {

class Storage {
public:
	static Storage get_client();

	// The object's contents and the download time in microseconds; ("", 0) on failure.
	std::tuple<std::string, uint64_t> download_file(std::string const &bucket, std::string const &key);

	// The upload time in microseconds (or the finish time when !report_time); 0 on failure.
	uint64_t upload_random_file(std::string const &bucket, std::string const &key, bool report_time,
				    char const *data, size_t data_size);
};

} // namespace sebs

#endif
