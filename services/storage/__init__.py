"""Storage: MongoDB records, the vector index, stored images, atomic face writes, audit, jobs, input files."""
