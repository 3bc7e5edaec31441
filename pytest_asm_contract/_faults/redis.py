"""The driver fault target for stores on redis-py (``redis.Redis``, its pipelines and scripts).

A write is a command that can change data: one of ``REDIS_WRITE_COMMANDS``, the common writes
of each data type and EVAL, EVALSHA and FCALL, since a script or a function may write anything
(their ``_RO`` forms only read). Intercepted while armed:

- ``redis.client.Redis.execute_command``: one command (``Script`` objects call EVALSHA there);
- ``redis.client.Pipeline.execute``: one write when any queued command writes. With MULTI/EXEC
  (redis-py's default) the server applies the pipeline whole, so failing it whole is exactly
  what a lost server gives. Without a transaction the server applies the commands one by one;
  failing the pipeline whole then cannot show what a connection lost half-way leaves behind
  (killed writers can);
- ``redis.client.Pipeline.immediate_execute_command``: commands sent at once while WATCHing.

Before a write the policy may fail it with ``redis.exceptions.ConnectionError`` (the command
never reaches the server); once a write returned, it may lose the reply (the same error, the
write done). Class methods are patched, so clients made before arming are covered too; the
asyncio and cluster clients are not intercepted.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from pytest_asm_contract._faults.drivers import DriverTarget
from pytest_asm_contract._faults.protocols import Policy

REDIS_WRITE_COMMANDS = frozenset(
    {
        # strings, counters and keys
        *("SET", "SETNX", "SETEX", "PSETEX", "MSET", "MSETNX", "GETSET", "GETDEL", "GETEX"),
        *("APPEND", "SETRANGE", "INCR", "INCRBY", "INCRBYFLOAT", "DECR", "DECRBY"),
        *("DEL", "UNLINK", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "PERSIST"),
        *("RENAME", "RENAMENX", "COPY", "MOVE", "RESTORE"),
        # hashes, lists, sets, sorted sets, streams
        *("HSET", "HSETNX", "HMSET", "HDEL", "HINCRBY", "HINCRBYFLOAT"),
        *("LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LPOP", "RPOP", "LSET", "LREM", "LINSERT"),
        *("LTRIM", "LMOVE", "RPOPLPUSH", "BLPOP", "BRPOP", "BLMOVE"),
        *("SADD", "SREM", "SPOP", "SMOVE", "SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"),
        *("ZADD", "ZREM", "ZINCRBY", "ZPOPMIN", "ZPOPMAX", "ZRANGESTORE", "ZUNIONSTORE"),
        *("ZINTERSTORE", "ZREMRANGEBYSCORE", "ZREMRANGEBYRANK", "ZREMRANGEBYLEX"),
        *("XADD", "XDEL", "XTRIM"),
        # server-side code, whole databases
        *("EVAL", "EVALSHA", "FCALL", "FLUSHDB", "FLUSHALL"),
    }
)


def command_name(args: Sequence[Any]) -> str:
    """The command's name, upper-cased (redis-py passes some as "SCRIPT LOAD")."""
    if not args:
        return ""
    name = args[0]
    if isinstance(name, bytes | bytearray):
        name = bytes(name).decode("ascii", "replace")
    return str(name).split(" ", 1)[0].upper()


def is_write(args: Sequence[Any]) -> bool:
    """Whether a command (its name and arguments) can change data."""
    return command_name(args) in REDIS_WRITE_COMMANDS


def _describe(args: Sequence[Any]) -> str:
    return " ".join(str(a) for a in args[:3])[:120]


class RedisTarget(DriverTarget):
    """Fails the writes of every redis-py client where the armed policy says."""

    module = "redis"
    label = "Redis"

    def error(self, message: str) -> Exception:
        error: Exception = importlib.import_module("redis.exceptions").ConnectionError(message)
        return error

    def _install(self, driver: Any) -> None:
        client = importlib.import_module("redis.client")

        def wrap_command(method: Any) -> Any:
            def command(redis: Any, *args: Any, **options: Any) -> Any:
                what, writes = _describe(args), is_write(args)
                return self.call(
                    what,
                    writes,
                    lambda: method(redis, *args, **options),
                    self._lost_reply_of(what) if writes else None,
                )

            return command

        def wrap_pipeline(method: Any) -> Any:
            def execute(pipeline: Any, *args: Any, **kwargs: Any) -> Any:
                names = [command_name(queued) for queued, _ in pipeline.command_stack]
                writes = any(name in REDIS_WRITE_COMMANDS for name in names)
                what = f"pipeline ({', '.join(names)})"[:120]
                return self.call(
                    what,
                    writes,
                    lambda: method(pipeline, *args, **kwargs),
                    self._lost_reply_of(what) if writes else None,
                )

            return execute

        self._patch(client.Redis, "execute_command", wrap_command)
        self._patch(client.Pipeline, "immediate_execute_command", wrap_command)
        self._patch(client.Pipeline, "execute", wrap_pipeline)

    def _lost_reply_of(self, what: str) -> Any:
        def settle(policy: Policy) -> None:
            self.lose_reply(policy, what)

        return settle


__all__ = ["REDIS_WRITE_COMMANDS", "RedisTarget", "command_name", "is_write"]
