"""Identity: records (CSV, SQL) → normalised fields → tokens (versioned). Pure: no I/O, no grpc."""
