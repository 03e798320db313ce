// AWS Lambda entry point: wraps the benchmark's function.handler and adds timing.
const path = require('path');

exports.handler = async function (event, context) {
  const begin = Date.now() / 1000;
  if (event.body) event = JSON.parse(event.body);
  const func = require(path.join(__dirname, 'function', 'function'));
  const ret = await func.handler(event);
  const end = Date.now() / 1000;
  return {
    begin,
    end,
    request_id: context.awsRequestId,
    result: ret,
  };
};
