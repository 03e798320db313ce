// OpenWhisk action entry point.
const path = require('path');

async function main(args) {
  const begin = Date.now() / 1000;
  const func = require(path.join(__dirname, 'function', 'function'));
  const ret = await func.handler(args);
  const end = Date.now() / 1000;
  return { begin, end, request_id: process.env.__OW_ACTIVATION_ID, result: ret };
}

exports.main = main;
