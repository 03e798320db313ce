// 010.sleep (cpp): sleeps for event["sleep"] seconds and returns that number.
#include <chrono>
#include <stdexcept>
#include <thread>

#include <rapidjson/document.h>

rapidjson::Document function(const rapidjson::Value &event)
{
	if (!event.IsObject() || !event.HasMember("sleep") || !event["sleep"].IsNumber())
		throw std::invalid_argument("010.sleep: the event needs a number \"sleep\"");
	const double seconds = event["sleep"].GetDouble();
	if (seconds < 0)
		throw std::invalid_argument("010.sleep: \"sleep\" must not be negative");

	std::this_thread::sleep_for(std::chrono::duration<double>(seconds));

	rapidjson::Document result;
	result.SetObject();
	result.AddMember("result", rapidjson::Value(event["sleep"], result.GetAllocator()), result.GetAllocator());
	return result;
}
