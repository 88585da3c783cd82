// node runtime (being written).
