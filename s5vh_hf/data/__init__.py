"""Feature datasets: schema, loading and verification, shard writing, dataset cards, HDF5/.mat import, the two MAE views, clustering and hash centers, synthetic data.

Imports nothing: importing a module of this package loads only what that module needs."""
