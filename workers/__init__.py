"""The task queue, the only code that knows about queues: the Celery app factory (app, with the Redis result
backend of result_backend), the tasks' typed messages and error codes (messages, errors; docs writes
docs/tasks.md from them), the tasks and their per-process service context (tasks, runtime), image payloads,
the client that submits and follows tasks, and bulk registration through the queue (bulk).
"""
