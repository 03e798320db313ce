/* Probe of `scripts/prepare-images --self-test`: the benchmark function. */
#include "utils.hpp"
#include <rapidjson/document.h>
std::string probe_main(rapidjson::Document const &event)
{
	std::string name = event.IsObject() && event.HasMember("name") && event["name"].IsString() ? event["name"].GetString() : "probe";
	return probe_function(name);
}
