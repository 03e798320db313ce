'use strict';
// sebs-example-lib: a stand-in for the third-party packages real SeBS nodejs
// benchmarks install (mustache, sharp, ...).  Installed from a local tarball.
const { escapeHtml } = require('./lib/escape');

function render(template, values) {
  const loops = /{%\s*for\s+(\w+)\s+in\s+(\w+)\s*%}([\s\S]*?){%\s*endfor\s*%}/g;
  let text = template.replace(loops, (_, name, seq, body) =>
    (values[seq] || []).map((item) => render(body, { ...values, [name]: item })).join(''));
  return text.replace(/{{\s*([A-Za-z_]\w*)\s*}}/g, (_, key) =>
    escapeHtml(values[key] === undefined ? '' : String(values[key])));
}

module.exports = { render, version: require('./package.json').version };
