"""bench/ is run by `make bench` (pytest-benchmark); keep these out of `make test`."""
