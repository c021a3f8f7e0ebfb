"""Vector stores on real databases, behind the same `VectorStoreIndex` protocol as the in-memory store.

    from rig_sync.vector_stores.sqlite import SQLiteVectorStore        # pip install 'rig-sync[sqlite]'
    from rig_sync.vector_stores.pgvector import PgVectorStore          # pip install 'rig-sync[pgvector]'
    from rig_sync.vector_stores.lancedb import LanceDBVectorStore      # pip install 'rig-sync[lancedb]'

Each module imports its database driver only when a store is opened; importing this package
imports nothing heavy.
"""
