# Input generator of 503.graph-bfs (used by the SeBS driver, not packaged).
# The event carries the graph itself: a connected random graph (a random tree
# plus extra edges), the same for the same size.
import random

size_generators = {
    'test': 10,
    'small': 1000,
    'large': 20000,
}


def buckets_count():
    return (0, 0)


def make_graph(vertices, seed=42):
    rng = random.Random(seed)
    edges = [[rng.randrange(v), v] for v in range(1, vertices)]
    for _ in range(2 * vertices):
        u, v = rng.randrange(vertices), rng.randrange(vertices)
        if u != v:
            edges.append([u, v])
    return edges


def generate_input(data_dir, size, benchmarks_bucket, input_paths, output_paths,
                   upload_func, nosql_func):
    vertices = size_generators[size]
    return {'vertices': vertices, 'edges': make_graph(vertices), 'source': 0}


def bfs(vertices, edges, source):
    """[order, layers, parents] as cpp/main.cpp computes them."""
    neighbours = [[] for _ in range(vertices)]
    for u, v in edges:
        neighbours[u].append(v)
        neighbours[v].append(u)
    parents = [-1] * vertices
    depth = [-1] * vertices
    parents[source], depth[source] = source, 0
    order, queue = [source], [source]
    for u in queue:
        for v in neighbours[u]:
            if depth[v] < 0:
                parents[v], depth[v] = u, depth[u] + 1
                order.append(v)
                queue.append(v)
    layers = [i for i in range(len(order)) if i == 0 or depth[order[i]] != depth[order[i - 1]]]
    return [order, layers + [len(order)], parents]


def validate_output(data_dir, input_config, output, language, storage=None):
    expected = bfs(input_config['vertices'], input_config['edges'], input_config.get('source', 0))
    if output.get('result') != expected:
        return 'BFS result differs from the breadth-first search of the input graph'
    return None
