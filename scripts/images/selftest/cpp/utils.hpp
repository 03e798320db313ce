#pragma once
#include <string>
std::string probe_function(std::string const &name);
