# Input generator of 311.compression (used by the SeBS driver, not packaged).

size_generators = {
    'test': 1,
    'small': 10,
    'large': 100,
}


def buckets_count():
    return (0, 0)


def generate_input(data_dir, size, benchmarks_bucket, input_paths, output_paths,
                   upload_func, nosql_func):
    return {'repeat': size_generators[size], 'format': 'gztar'}
