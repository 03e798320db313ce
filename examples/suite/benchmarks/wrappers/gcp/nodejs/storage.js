// Object storage shim (Google Cloud Storage) used by benchmarks that list the "storage" module.
const path = require('path');
const crypto = require('crypto');

class Storage {
  static uniqueName(file) {
    const ext = path.extname(file);
    return `${path.basename(file, ext)}.${crypto.randomUUID().split('-')[0]}${ext}`;
  }

  upload(bucket, file, filepath) {
    const key = Storage.uniqueName(file);
    throw new Error(`Google Cloud Storage: upload of ${filepath} to ${bucket}/${key} needs the cloud SDK`);
  }

  download(bucket, file, filepath) {
    throw new Error(`Google Cloud Storage: download of ${bucket}/${file} to ${filepath} needs the cloud SDK`);
  }
}

exports.storage = Storage;
