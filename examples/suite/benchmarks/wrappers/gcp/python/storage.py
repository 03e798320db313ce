# Object storage shim (Google Cloud Storage) used by benchmarks that list the "storage" module.
import os
import uuid


class storage:
    instance = None
    client = None

    def __init__(self):
        from google.cloud import storage as gcs
        self.client = gcs.Client()

    @staticmethod
    def unique_name(name):
        base, ext = os.path.splitext(name)
        return '{}.{}{}'.format(base, str(uuid.uuid4()).split('-')[0], ext)

    def upload(self, bucket, file, filepath):
        key = storage.unique_name(file)
        self._upload(bucket, key, filepath)
        return key

    def _upload(self, bucket, key, filepath):
        raise NotImplementedError('Google Cloud Storage upload of {} to {}/{}'.format(filepath, bucket, key))

    def download(self, bucket, file, filepath):
        raise NotImplementedError('Google Cloud Storage download of {}/{} to {}'.format(bucket, file, filepath))

    @staticmethod
    def get_instance():
        if storage.instance is None:
            storage.instance = storage()
        return storage.instance
