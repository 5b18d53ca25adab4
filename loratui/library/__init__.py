"""library.db: the tool's memory of runs, metrics, adapters, lineage and generations."""
