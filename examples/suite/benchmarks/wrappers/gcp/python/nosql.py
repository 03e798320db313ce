# NoSQL shim (Datastore) used by benchmarks that list the "nosql" module.


class nosql:
    instance = None

    def __init__(self):
        self.tables = {}

    def insert(self, table, primary_key, secondary_key, data):
        self.tables.setdefault(table, {})[(primary_key, secondary_key)] = dict(data)

    def get(self, table, primary_key, secondary_key):
        return self.tables.get(table, {}).get((primary_key, secondary_key))

    def query(self, table, primary_key):
        return [v for (p, _s), v in self.tables.get(table, {}).items() if p == primary_key]

    def delete(self, table, primary_key, secondary_key):
        self.tables.get(table, {}).pop((primary_key, secondary_key), None)

    @staticmethod
    def get_instance():
        if nosql.instance is None:
            nosql.instance = nosql()
        return nosql.instance

    backend = 'Datastore'
