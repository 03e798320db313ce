// NoSQL shim (Datastore) used by benchmarks that list the "nosql" module.
class NoSQL {
  constructor() {
    this.tables = new Map();
  }

  insert(table, primaryKey, secondaryKey, data) {
    if (!this.tables.has(table)) this.tables.set(table, new Map());
    this.tables.get(table).set(`${primaryKey}/${secondaryKey}`, { ...data });
  }

  get(table, primaryKey, secondaryKey) {
    const t = this.tables.get(table);
    return t ? t.get(`${primaryKey}/${secondaryKey}`) : undefined;
  }
}

NoSQL.backend = 'Datastore';
exports.nosql = NoSQL;
