import datetime
import os
import shutil
import tempfile

SCRIPT_DIR = os.path.abspath(os.path.dirname(__file__))
DATA_DIR = os.path.join(SCRIPT_DIR, 'resources')


def parse_directory(directory):
    size = 0
    for root, _dirs, files in os.walk(directory):
        for name in files:
            size += os.path.getsize(os.path.join(root, name))
    return size


def handler(event):
    repeat = int(event.get('repeat', 1))
    fmt = event.get('format', 'gztar')
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, 'data')
        for i in range(repeat):
            shutil.copytree(DATA_DIR, os.path.join(data, str(i)))
        size = parse_directory(data)

        compress_begin = datetime.datetime.now()
        archive = shutil.make_archive(os.path.join(tmp, 'archive'), fmt, root_dir=data)
        compress_end = datetime.datetime.now()
        archive_size = os.path.getsize(archive)

    process_time = (compress_end - compress_begin) / datetime.timedelta(microseconds=1)
    return {
        'result': {'input_size': size, 'archive_size': archive_size},
        'measurement': {'compute_time': process_time},
    }
