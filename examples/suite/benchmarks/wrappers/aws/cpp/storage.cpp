// Stub object storage (see storage.hpp): every call reports failure.
#include <iostream>

#include "storage.hpp"

sebs::Storage sebs::Storage::get_client()
{
	return Storage();
}

std::tuple<std::string, uint64_t> sebs::Storage::download_file(std::string const &bucket, std::string const &key)
{
	std::cerr << "storage stub: cannot download " << bucket << "/" << key << " (no AWS SDK)" << std::endl;
	return std::make_tuple(std::string(), uint64_t(0));
}

uint64_t sebs::Storage::upload_random_file(std::string const &bucket, std::string const &key, bool,
					   char const *, size_t)
{
	std::cerr << "storage stub: cannot upload " << bucket << "/" << key << " (no AWS SDK)" << std::endl;
	return 0;
}
