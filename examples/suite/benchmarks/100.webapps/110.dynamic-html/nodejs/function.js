const fs = require('fs');
const path = require('path');
const { render } = require('sebs-example-lib');

function randomInteger(min, max) {
  return Math.floor(Math.random() * (max - min + 1)) + min;
}

exports.handler = async function (event) {
  const randomNumbers = Array.from({ length: event.random_len }, () => randomInteger(0, 1000000));
  const file = path.resolve(__dirname, 'templates', 'template.html');
  const template = await fs.promises.readFile(file, 'utf-8');
  const html = render(template, {
    username: event.username,
    cur_time: new Date().toLocaleString(),
    random_numbers: randomNumbers,
  });
  return { result: html };
};
