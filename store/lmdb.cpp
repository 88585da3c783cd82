// LMDB store (being written).
