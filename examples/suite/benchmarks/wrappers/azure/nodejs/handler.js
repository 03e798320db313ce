// Azure Functions HTTP trigger (scriptFile of handler/function.json).
const path = require('path');

module.exports = async function (context, req) {
  const begin = Date.now() / 1000;
  const func = require(path.join(__dirname, 'function'));
  const ret = await func.handler(req.body);
  const end = Date.now() / 1000;
  context.res = {
    status: 200,
    headers: { 'Content-Type': 'application/json' },
    body: { begin, end, request_id: context.invocationId, result: ret },
  };
};
