# The CMake package of the stand-in AWS Lambda C++ runtime (sebsfs test images,
# see README.md next to its sources): the imported target AWS::aws-lambda-runtime
# and aws_lambda_package_target(), as aws-lambda-cpp defines them.
include("${CMAKE_CURRENT_LIST_DIR}/aws-lambda-runtime-targets.cmake")
set(AWS_LAMBDA_PACKAGING_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/packager")

# aws_lambda_package_target(target): a custom target aws-lambda-package-<target>
# that writes ${CMAKE_BINARY_DIR}/<target>.zip holding bin/<target>, bootstrap
# and lib/ (the shared libraries the executable needs, glibc's own excepted).
function(aws_lambda_package_target target)
	add_custom_target(aws-lambda-package-${target}
		COMMAND "${AWS_LAMBDA_PACKAGING_SCRIPT}" "$<TARGET_FILE:${target}>"
		WORKING_DIRECTORY "${CMAKE_BINARY_DIR}"
		DEPENDS ${target}
		VERBATIM)
endfunction()
