"""Storage: MongoDB records, the vector index, stored images, atomic face writes, the audit trail, jobs, sign-in
throttling; which input files may be read, private files on disk, crash points for the consistency tests."""
