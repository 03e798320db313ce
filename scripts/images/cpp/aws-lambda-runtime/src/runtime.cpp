/* The stand-in AWS Lambda C++ runtime: see include/aws/lambda-runtime/runtime.h. */
#include <aws/lambda-runtime/runtime.h>

#include <cstdlib>
#include <exception>
#include <iostream>
#include <iterator>
#include <string>
#include <utility>

namespace aws {
namespace lambda_runtime {

namespace {

/* JSON string quoting for the failure payload, as the real runtime builds it. */
std::string json_quote(std::string const &text)
{
	static char const hex[] = "0123456789abcdef";
	std::string out = "\"";
	for (unsigned char c : text) {
		switch (c) {
		case '"': out += "\\\""; break;
		case '\\': out += "\\\\"; break;
		case '\n': out += "\\n"; break;
		case '\r': out += "\\r"; break;
		case '\t': out += "\\t"; break;
		default:
			if (c < 0x20) {
				out += "\\u00";
				out += hex[c >> 4];
				out += hex[c & 0xf];
			} else {
				out += static_cast<char>(c);
			}
		}
	}
	out += '"';
	return out;
}

} // namespace

invocation_response::invocation_response(std::string payload, std::string content_type, bool success)
	: payload_(std::move(payload)), content_type_(std::move(content_type)), success_(success)
{
}

invocation_response invocation_response::success(std::string const &payload, std::string const &content_type)
{
	return invocation_response(payload, content_type, true);
}

invocation_response invocation_response::failure(std::string const &error_message, std::string const &error_type)
{
	std::string payload = "{\"errorMessage\":" + json_quote(error_message) +
			      ",\"errorType\":" + json_quote(error_type) + ",\"stackTrace\":[]}";
	return invocation_response(payload, "application/json", false);
}

void run_handler(std::function<invocation_response(invocation_request const &)> const &handler)
{
	invocation_request request;
	request.payload.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
	if (std::cin.bad()) {
		std::cerr << "aws-lambda-runtime (stand-in): cannot read the event from stdin" << std::endl;
		std::exit(1);
	}
	request.request_id = "local";
	request.function_arn = "arn:aws:lambda:local:000000000000:function:local";

	try {
		invocation_response response = handler(request);
		if (!response.is_success()) {
			std::cerr << response.get_payload() << std::endl;
			std::exit(1);
		}
		std::cout << response.get_payload() << std::endl;
		std::exit(std::cout.good() ? 0 : 1);
	} catch (std::exception const &e) {
		std::cerr << "aws-lambda-runtime (stand-in): the handler threw: " << e.what() << std::endl;
	} catch (...) {
		std::cerr << "aws-lambda-runtime (stand-in): the handler threw an unknown exception" << std::endl;
	}
	std::exit(1);
}

} // namespace lambda_runtime
} // namespace aws
