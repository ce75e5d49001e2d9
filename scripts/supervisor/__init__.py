"""The local process supervisor: MongoDB, Redis, Chroma, workers and the dashboard on one machine.

catalogue (what each service is: address, command, environment, files), probes (does it answer), processes
(launch, pid files, ownership, signals), supervisor (start, stop, status), launcher (Celery workers as child
processes of tests and scripts, started like the supervisor's)."""
