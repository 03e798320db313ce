/* Probe of `scripts/prepare-images --self-test`: uses a Boost header. */
#include "utils.hpp"
#include <boost/algorithm/string/case_conv.hpp>
std::string probe_function(std::string const &name) { return boost::algorithm::to_upper_copy(name); }
