'use strict';

const entities = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

exports.escapeHtml = (s) => s.replace(/[&<>"']/g, (c) => entities[c]);
