/*
 * A stand-in for the AWS Lambda C++ runtime (aws-lambda-cpp) of the sebsfs test
 * images (scripts/images/cpp/README.md): the subset of its API that SeBS's C++
 * handlers use.  run_handler() does not talk to the Lambda runtime API: it reads
 * one event from stdin, calls the handler once and writes the response to stdout.
 */
#pragma once

#include <functional>
#include <string>

namespace aws {
namespace lambda_runtime {

struct invocation_request {
	/* The event, as the function was invoked with it (JSON text). */
	std::string payload;
	/* "local": there is no Lambda service behind the stand-in. */
	std::string request_id;
	std::string function_arn;
};

class invocation_response {
public:
	static invocation_response success(std::string const &payload, std::string const &content_type);
	static invocation_response failure(std::string const &error_message, std::string const &error_type);

	bool is_success() const { return success_; }
	/* The payload on success; on failure a JSON object with errorMessage and errorType. */
	std::string const &get_payload() const { return payload_; }
	std::string const &get_content_type() const { return content_type_; }

private:
	invocation_response(std::string payload, std::string content_type, bool success);

	std::string payload_;
	std::string content_type_;
	bool success_;
};

/*
 * Reads the whole of stdin as the event, calls handler once with it and writes
 * the response payload and a newline to stdout.  Exits the process: 0 when the
 * handler succeeded, 1 when it failed (its error message goes to stderr) or threw.
 */
[[noreturn]] void run_handler(std::function<invocation_response(invocation_request const &)> const &handler);

} // namespace lambda_runtime
} // namespace aws
