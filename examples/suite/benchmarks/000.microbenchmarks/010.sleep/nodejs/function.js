const timeout = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

exports.handler = async function (event) {
  const sleep = event.sleep;
  await timeout(sleep * 1000);
  return { result: sleep };
};
