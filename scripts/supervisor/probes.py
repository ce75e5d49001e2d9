"""Does a service answer right now? One short probe per kind of server; each returns False, never raises."""

from __future__ import annotations

import http.client
from typing import Any

import pymongo
import redis
from pymongo.errors import PyMongoError

PROBE_TIMEOUT_S = 0.5
CHROMA_HEARTBEAT = "/api/v2/heartbeat"


def mongo_answers(uri: str) -> bool:
    """The MongoDB-protocol server at `uri` answers a ping."""
    ms = int(PROBE_TIMEOUT_S * 1000)
    try:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            uri, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, socketTimeoutMS=2 * ms
        )
    except PyMongoError:
        return False
    try:
        client.admin.command("ping")
        return True
    except PyMongoError:
        return False
    finally:
        client.close()


def redis_answers(url: str) -> bool:
    """The Redis at `url` answers a PING."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=PROBE_TIMEOUT_S, socket_timeout=PROBE_TIMEOUT_S)
    except ValueError:
        return False
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def http_ok(host: str, port: int, path: str) -> bool:
    """GET http://host:port/path answers 200."""
    conn = http.client.HTTPConnection(host, port, timeout=PROBE_TIMEOUT_S)
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def chroma_answers(host: str, port: int) -> bool:
    """The Chroma server at host:port answers its heartbeat."""
    conn = http.client.HTTPConnection(host, port, timeout=2 * PROBE_TIMEOUT_S)
    try:
        conn.request("GET", CHROMA_HEARTBEAT)
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
