// AWS Lambda entry point of the C++ benchmarks (a custom runtime: the
// package's bootstrap runs bin/benchmark).  Parses the event with rapidjson,
// calls the benchmark's function() (main.cpp) and answers with its result and
// the timing, like the suite's python and nodejs handlers.  A benchmark
// rejects a bad event by throwing; the invocation then fails.
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <string>

#include <aws/lambda-runtime/runtime.h>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "utils.hpp"

rapidjson::Document function(const rapidjson::Value &event);

namespace {

// Kept across invocations of one process, as in a warm Lambda container.
bool cold_start = true;
std::string container_id;

std::string random_id()
{
	std::random_device rd;
	char id[17];
	std::snprintf(id, sizeof(id), "%08x%08x", static_cast<unsigned>(rd()), static_cast<unsigned>(rd()));
	return id;
}

aws::lambda_runtime::invocation_response handler(aws::lambda_runtime::invocation_request const &req)
{
	using aws::lambda_runtime::invocation_response;

	rapidjson::Document event;
	event.Parse(req.payload.c_str());
	if (event.HasParseError())
		return invocation_response::failure("the event is not JSON", "InvalidEvent");
	// An API Gateway trigger delivers the event as a JSON string under "body".
	if (event.IsObject() && event.HasMember("body") && event["body"].IsString()) {
		rapidjson::Document body;
		body.Parse(event["body"].GetString());
		if (body.HasParseError())
			return invocation_response::failure("the event's body is not JSON", "InvalidEvent");
		event = std::move(body);
	}

	const double begin = timeSinceEpochMicrosec() / 1e6;
	rapidjson::Document result;
	try {
		result = function(event);
	} catch (std::exception const &e) {
		return invocation_response::failure(e.what(), "FunctionError");
	}
	const double end = timeSinceEpochMicrosec() / 1e6;

	rapidjson::Document answer;
	answer.SetObject();
	auto &alloc = answer.GetAllocator();
	answer.AddMember("begin", begin, alloc);
	answer.AddMember("end", end, alloc);
	answer.AddMember("request_id", rapidjson::Value(req.request_id.c_str(), alloc), alloc);
	answer.AddMember("is_cold", cold_start, alloc);
	answer.AddMember("container_id", rapidjson::Value(container_id.c_str(), alloc), alloc);
	answer.AddMember("result", rapidjson::Value(result, alloc), alloc);
	cold_start = false;

	rapidjson::StringBuffer buffer;
	rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
	answer.Accept(writer);
	return invocation_response::success(buffer.GetString(), "application/json");
}

} // namespace

int main()
{
	container_id = random_id();
	aws::lambda_runtime::run_handler(handler);
	return 0;
}
