// Google Cloud Functions entry point (deployed as index.js).
const path = require('path');

exports.handler = async function (req, res) {
  const begin = Date.now() / 1000;
  const func = require(path.join(__dirname, 'function', 'function'));
  const ret = await func.handler(req.body);
  const end = Date.now() / 1000;
  res.status(200).json({
    begin,
    end,
    request_id: req.get('Function-Execution-Id'),
    result: ret,
  });
};
