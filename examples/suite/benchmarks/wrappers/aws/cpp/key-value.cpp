// Stub key-value storage (see key-value.hpp): every call reports failure.
#include <iostream>

#include "key-value.hpp"

uint64_t KeyValue::download_file(std::string const &table, std::string const &key, int &required_retries,
				 double &read_units, bool)
{
	std::cerr << "key-value stub: cannot read " << table << "/" << key << " (no AWS SDK)" << std::endl;
	required_retries = 0;
	read_units = 0;
	return 0;
}

uint64_t KeyValue::upload_file(std::string const &table, std::string const &key, double &write_units, int,
			       unsigned char *)
{
	std::cerr << "key-value stub: cannot write " << table << "/" << key << " (no AWS SDK)" << std::endl;
	write_units = 0;
	return 0;
}
