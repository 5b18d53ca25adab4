"""library.db, the tool's memory: opening and migrating it (library), the runs table's owner (runs), the metric
keys and values (metrics), write transactions (txn). The library, runs and dashboard packages all read and write
it through here, so none of them imports another for the database."""
