# Object storage shim (MinIO, OpenWhisk) used by benchmarks that list the "storage" module.
import os
import uuid


class storage:
    instance = None
    client = None

    def __init__(self):
        import minio
        self.client = minio.Minio(os.getenv('MINIO_STORAGE_CONNECTION_URL'), access_key=os.getenv('MINIO_STORAGE_ACCESS_KEY'), secret_key=os.getenv('MINIO_STORAGE_SECRET_KEY'), secure=False)

    @staticmethod
    def unique_name(name):
        base, ext = os.path.splitext(name)
        return '{}.{}{}'.format(base, str(uuid.uuid4()).split('-')[0], ext)

    def upload(self, bucket, file, filepath):
        key = storage.unique_name(file)
        self._upload(bucket, key, filepath)
        return key

    def _upload(self, bucket, key, filepath):
        raise NotImplementedError('MinIO, OpenWhisk upload of {} to {}/{}'.format(filepath, bucket, key))

    def download(self, bucket, file, filepath):
        raise NotImplementedError('MinIO, OpenWhisk download of {}/{} to {}'.format(bucket, file, filepath))

    @staticmethod
    def get_instance():
        if storage.instance is None:
            storage.instance = storage()
        return storage.instance
