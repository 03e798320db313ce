/* Probe of `scripts/prepare-images --self-test`: a handler on the stand-in runtime API, with rapidjson. */
#include <aws/lambda-runtime/runtime.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <string>

std::string probe_main(rapidjson::Document const &event);

static aws::lambda_runtime::invocation_response handler(aws::lambda_runtime::invocation_request const &req)
{
	rapidjson::Document event;
	if (event.Parse(req.payload.c_str()).HasParseError())
		return aws::lambda_runtime::invocation_response::failure("the event is not JSON", "InvalidEvent");
	std::string result = probe_main(event);
	rapidjson::StringBuffer buffer;
	rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
	writer.StartObject();
	writer.Key("result");
	writer.String(result.c_str());
	writer.Key("request_id");
	writer.String(req.request_id.c_str());
	writer.EndObject();
	return aws::lambda_runtime::invocation_response::success(buffer.GetString(), "application/json");
}

int main()
{
	aws::lambda_runtime::run_handler(handler);
}
