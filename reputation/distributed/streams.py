"""Redis Streams as the work queues between machines: names, reads, re-claims, acks, dead letters.

Every Redis part of the project (crawl workers, scoring workers, the single writer, the status
command) goes through this module, so the stream names, the message encoding and the failure
rules live in one place:

* A message is one JSON document in the field ``data`` (plus ``v``, the format version), so a
  review item or a score keeps its types; anything else is *malformed* and dead-lettered.
* Readers are consumers in a consumer group: ``read_batch`` first re-claims messages another
  consumer left pending longer than ``min_idle`` seconds (``XAUTOCLAIM``: that consumer died
  mid-batch), then reads new ones (``XREADGROUP``). Work is acknowledged only after its result
  is stored, so a worker killed at any point loses nothing: its messages are re-delivered.
* A message delivered ``max_deliveries`` times without an ack (it crashes every worker that
  takes it) is moved to the dead-letter stream with its reason instead of cycling forever;
  so is a message a reader cannot use. Each dead letter increments a per-reason counter.
* Connection loss: ``connect(url, wait=True)`` retries every command with exponential backoff
  for ever (workers wait for Redis to come back, they never exit holding work);
  ``wait=False`` gives up after a few tries with ``RedisUnavailableError`` (one line, exit 1).
* Redis restarted without its data loses the consumer groups: reads recreate them (NOGROUP).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from storage.errors import ReputationError

log = logging.getLogger(__name__)

#: Key prefix of everything the project keeps in Redis (one Redis database may serve several tools).
PREFIX = "reputation"
#: Review items from crawl workers (crawler.pipelines.stream_writer) -> the writer.
ITEMS_STREAM = f"{PREFIX}:items"
#: One message per page a crawl worker fetched (for checks and status; nobody consumes it in a group).
PAGES_STREAM = f"{PREFIX}:pages"
#: Reviews to score (enqueued from SQLite by ``reputation score --redis``) -> scoring workers.
SCORE_WORK_STREAM = f"{PREFIX}:score:work"
#: Scores from scoring workers -> the writer.
SCORES_STREAM = f"{PREFIX}:scores"
#: Messages that failed repeatedly or could not be read, with their reason.
DEAD_LETTER_STREAM = f"{PREFIX}:dead"
#: Hash "<stream>|<reason>" -> number of messages dead-lettered for that reason.
DEAD_LETTER_COUNTS = f"{PREFIX}:dead:counts"
#: Set of worker names that ever sent a heartbeat; each has a hash at worker_key(name).
WORKERS_SET = f"{PREFIX}:workers"
#: Set of "review_id|body_hash" sent to the scoring workers and not yet stored, so a second
#: enqueue does not score a review twice.
SCORE_QUEUED_SET = f"{PREFIX}:score:queued"
#: Hash "model_id@revision" -> JSON {model_id, revision, worker, at}: the models scoring workers run
#: (the writer enqueues work for the ones announced recently).
SCORE_MODELS_KEY = f"{PREFIX}:score:models"

#: Consumer group of the writer on ITEMS_STREAM and SCORES_STREAM.
WRITER_GROUP = "ingest"
#: Consumer group of the scoring workers on SCORE_WORK_STREAM.
SCORERS_GROUP = "scorers"

#: Every stream and the group that consumes it (for status and for ensure_groups).
GROUPS: dict[str, str] = {
    ITEMS_STREAM: WRITER_GROUP,
    SCORE_WORK_STREAM: SCORERS_GROUP,
    SCORES_STREAM: WRITER_GROUP,
}

#: Message format version, in field "v".
FORMAT_VERSION = "1"
#: Default seconds a message may stay pending with a consumer before another may claim it.
DEFAULT_MIN_IDLE = 60.0
#: Default deliveries after which a message that is never acknowledged is dead-lettered.
DEFAULT_MAX_DELIVERIES = 5
#: Seconds over which a worker's recent rate is computed.
RATE_WINDOW = 60.0
#: Seconds a worker's heartbeat hash is kept after its last beat (status shows dead workers a day).
WORKER_TTL = 24 * 3600

# Dead-letter reasons (short, stable: status groups by them).
REASON_MALFORMED = "malformed"
REASON_TOO_MANY_DELIVERIES = "too_many_deliveries"


class RedisUnavailableError(ReputationError):
    """Redis cannot be reached (a command that does not wait for it); the message names the URL."""

    exit_code = 69  # EX_UNAVAILABLE


class MalformedMessage(ValueError):
    """A stream message that does not hold what its stream carries; the text is the reason."""


@dataclass(frozen=True)
class Message:
    """One stream entry: its id, the stream it came from, the decoded payload (None if malformed)."""

    stream: str
    id: str
    fields: dict[str, str]
    deliveries: int = 1

    def payload(self) -> dict[str, Any]:
        """The JSON document in the message; MalformedMessage says why there is none."""
        return decode(self.fields)


# --- connection -----------------------------------------------------------------------------


def server_stream_id(client: redis.Redis) -> str:
    """A stream id for this moment by the Redis server's clock (stream ids are made from it)."""
    seconds, micros = client.time()
    return f"{int(seconds) * 1000 + int(micros) // 1000}-0"


def connect(url: str, *, wait: bool = True, socket_timeout: float | None = 30.0) -> redis.Redis:
    """A client for ``url`` (redis://host:port/db) that survives connection loss.

    ``wait=True`` (workers, the writer): every command is retried with exponential backoff
    (0.1 s doubling to 10 s) until Redis answers again. ``wait=False`` (status, enqueue from a
    CLI): a short retry, then RedisUnavailableError. Checks the connection once before returning.
    """
    try:
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=socket_timeout,
            socket_connect_timeout=5.0,
            health_check_interval=30,
            retry=Retry(ExponentialBackoff(cap=10.0, base=0.1), -1 if wait else 3),
            retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        )
    except ValueError as exc:
        raise ReputationError(f"--redis {url!r}: {exc}") from None
    if wait:
        wait_until_up(client, url)
    else:
        try:
            client.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise RedisUnavailableError(f"Redis at {safe_url(url)} is unreachable: {exc}") from None
    return client


def wait_until_up(client: redis.Redis, url: str = "", *, max_sleep: float = 10.0) -> None:
    """Block until ``client`` answers PING, logging once per outage (workers start before Redis)."""
    delay = 0.1
    warned = False
    while True:
        try:
            client.ping()
            if warned:
                log.warning("Redis at %s is back", safe_url(url))
            return
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            if not warned:
                log.warning("Redis at %s unreachable (%s); waiting", safe_url(url), exc)
                warned = True
            time.sleep(delay)
            delay = min(delay * 2, max_sleep)


def safe_url(url: str) -> str:
    """``url`` without a password, for messages and logs."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


# --- messages -------------------------------------------------------------------------------


def encode(payload: Mapping[str, Any], **extra: str) -> dict[str, str]:
    """Stream fields for ``payload`` (a JSON object), plus ``extra`` plain fields (kind, worker...)."""
    return {
        **extra,
        "v": FORMAT_VERSION,
        "data": json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
    }


def decode(fields: Mapping[str, str]) -> dict[str, Any]:
    """The payload of a message's fields; MalformedMessage with the reason when there is none."""
    if fields.get("v") != FORMAT_VERSION:
        raise MalformedMessage(f"format version {fields.get('v')!r}, expected {FORMAT_VERSION!r}")
    raw = fields.get("data")
    if raw is None:
        raise MalformedMessage("no 'data' field")
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MalformedMessage(f"'data' is not JSON ({exc.msg})") from None
    if not isinstance(payload, dict):
        raise MalformedMessage(f"'data' is a JSON {type(payload).__name__}, expected an object")
    return payload


def queued_member(fields: Mapping[str, str]) -> str | None:
    """The SCORE_QUEUED_SET member ("review_id|body_hash") a scoring message names, if it can be read."""
    try:
        value = decode(fields).get("queued")
    except MalformedMessage:
        return None
    return value if isinstance(value, str) else None


def require(payload: Mapping[str, Any], **types: type | tuple[type, ...]) -> None:
    """MalformedMessage unless ``payload`` has each named key with a value of the given type."""
    for key, kind in types.items():
        if key not in payload:
            raise MalformedMessage(f"missing field {key!r}")
        if not isinstance(payload[key], kind):
            raise MalformedMessage(f"field {key!r} is {type(payload[key]).__name__}")


def append(
    client: redis.Redis, stream: str, payload: Mapping[str, Any], *, maxlen: int | None = None, **extra: str
) -> str:
    """XADD one message; returns its id. ``maxlen`` (approximate) bounds streams nobody trims."""
    return str(client.xadd(stream, encode(payload, **extra), maxlen=maxlen, approximate=True))  # type: ignore[arg-type]


def append_many(
    client: redis.Redis, stream: str, payloads: Iterable[Mapping[str, Any]], **extra: str
) -> list[str]:
    """XADD several messages in one round trip (a MULTI/EXEC, so all or none)."""
    pipe = client.pipeline(transaction=True)
    for payload in payloads:
        pipe.xadd(stream, encode(payload, **extra))  # type: ignore[arg-type]
    return [str(i) for i in pipe.execute()]


# --- consumer groups ------------------------------------------------------------------------


def ensure_group(client: redis.Redis, stream: str, group: str, *, start: str = "0") -> None:
    """Create ``group`` on ``stream`` (and the stream) unless it exists; idempotent."""
    try:
        client.xgroup_create(stream, group, id=start, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def ensure_groups(client: redis.Redis) -> None:
    """Every project stream with its consumer group (workers and the writer call this at start)."""
    for stream, group in GROUPS.items():
        ensure_group(client, stream, group)


def consumer_name(kind: str) -> str:
    """A consumer name unique to this process: ``<kind>@<host>:<pid>``."""
    return f"{kind}@{socket.gethostname()}:{os.getpid()}"


def read_batch(
    client: redis.Redis,
    stream: str,
    group: str,
    consumer: str,
    *,
    count: int = 64,
    block: float = 2.0,
    min_idle: float = DEFAULT_MIN_IDLE,
    max_deliveries: int = DEFAULT_MAX_DELIVERIES,
) -> list[Message]:
    """Up to ``count`` messages for ``consumer``: re-claimed stale ones first, then new ones.

    Waits at most ``block`` seconds for new messages. Messages delivered more than
    ``max_deliveries`` times are dead-lettered here, not returned.
    """
    for attempt in range(2):
        try:
            messages = claim_stale(
                client, stream, group, consumer, min_idle=min_idle, count=count, max_deliveries=max_deliveries
            )
            if messages:
                return messages
            reply: Any = client.xreadgroup(
                group, consumer, {stream: ">"}, count=count, block=max(1, int(block * 1000))
            )
            return [
                Message(stream, mid, dict(fields or {}), 1)
                for _, entries in reply or []
                for mid, fields in entries
            ]
        except ResponseError as exc:
            if "NOGROUP" not in str(exc) or attempt:
                raise
            # Redis restarted without its data (or someone deleted the stream): start again.
            log.warning("consumer group %s on %s is gone; recreating it", group, stream)
            ensure_group(client, stream, group)
    return []


def claim_stale(
    client: redis.Redis,
    stream: str,
    group: str,
    consumer: str,
    *,
    min_idle: float = DEFAULT_MIN_IDLE,
    count: int = 64,
    max_deliveries: int = DEFAULT_MAX_DELIVERIES,
) -> list[Message]:
    """Take over messages pending with any consumer for longer than ``min_idle`` seconds (XAUTOCLAIM).

    A message already delivered ``max_deliveries`` times goes to the dead-letter stream instead.
    Entries deleted from the stream while pending (XAUTOCLAIM reports them) are acknowledged.
    """
    claimed: list[Message] = []
    start = "0-0"
    idle_ms = max(0, int(min_idle * 1000))
    while len(claimed) < count:
        reply: Any = client.xautoclaim(
            stream, group, consumer, idle_ms, start_id=start, count=count - len(claimed)
        )
        next_start, entries = reply[0], reply[1]
        deleted = reply[2] if len(reply) > 2 else []
        if deleted:
            client.xack(stream, group, *deleted)
        live = [(mid, fields) for mid, fields in entries if fields is not None]
        counts = delivery_counts(client, stream, group, [mid for mid, _ in live])
        for mid, fields in live:
            message = Message(stream, mid, dict(fields), counts.get(mid, 1))
            if message.deliveries > max_deliveries:
                dead_letter(
                    client,
                    group,
                    message,
                    REASON_TOO_MANY_DELIVERIES,
                    f"delivered {message.deliveries} times without an acknowledgement",
                )
            else:
                claimed.append(message)
        if next_start in ("0-0", "0"):
            break
        start = next_start
    return claimed


def delivery_counts(client: redis.Redis, stream: str, group: str, ids: Sequence[str]) -> dict[str, int]:
    """How many times each pending message in ``ids`` has been delivered (from XPENDING)."""
    if not ids:
        return {}
    ordered = sorted(ids, key=_id_key)
    rows: Any = client.xpending_range(
        stream, group, min=ordered[0], max=ordered[-1], count=len(ordered) * 4 + 16
    )
    wanted = set(ids)
    return {row["message_id"]: int(row["times_delivered"]) for row in rows if row["message_id"] in wanted}


# Resets the idle time of the messages a consumer still owns (and only those: a message another
# consumer has claimed meanwhile stays with it). KEYS: stream. ARGV: group, consumer, ids...
_TOUCH = """
local touched = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    touched = touched + 1
  end
end
return touched
"""


def touch(client: redis.Redis, stream: str, group: str, consumer: str, ids: Sequence[str]) -> int:
    """Reset the idle time of messages this consumer still owns, so that a batch which takes longer
    than ``min_idle`` is not taken over while its worker is alive; returns how many it still owns."""
    if not ids:
        return 0
    return int(client.eval(_TOUCH, 1, stream, group, consumer, *ids))


def ack(client: redis.Redis, stream: str, group: str, ids: Sequence[str]) -> int:
    """Acknowledge messages (done with: their result is stored); returns how many were pending."""
    if not ids:
        return 0
    return int(client.xack(stream, group, *ids))


# Trims a stream below the oldest entry any of its consumer groups still needs: for each group,
# its oldest pending entry, else the entry after its last delivered one. One script, so no entry is
# delivered (becoming pending) between reading the groups and trimming. KEYS: stream. Returns the
# number of entries removed (0 when the stream has no group: nobody said what is done).
_TRIM_DONE = """
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
local floor = nil
for _, g in ipairs(groups) do
  local info = {}
  for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
  local bound
  local pending = redis.call('XPENDING', KEYS[1], info['name'])
  if tonumber(pending[1]) > 0 then
    bound = pending[2]
  else
    local ms, seq = parse(info['last-delivered-id'])
    bound = string.format('%d-%d', ms, seq + 1)
  end
  if floor == nil or less(bound, floor) then floor = bound end
end
return redis.call('XTRIM', KEYS[1], 'MINID', floor)
"""


def trim_done(client: redis.Redis, stream: str) -> int:
    """Remove the entries every consumer group of ``stream`` has acknowledged; returns how many.

    An entry still pending with any consumer (a worker killed mid-batch included) or not yet
    delivered is never removed, so re-claiming loses nothing; the stream keeps only work in hand.
    Called by the writer after each acknowledged batch (items, scores) and after a scoring
    batch, so Redis memory follows the backlog, not the history.
    """
    return int(client.eval(_TRIM_DONE, 1, stream))


# Appends the results and acknowledges the work in one step, but only for a consumer that still
# owns the work: if another worker claimed it meanwhile (this one was slow, not dead), the
# results are not appended twice. KEYS: work stream, results stream. ARGV: group, consumer,
# format version, then pairs (work id, result JSON). Returns how many results were appended.
_APPEND_AND_ACK = """
local appended = 0
for i = 4, #ARGV, 2 do
  local id = ARGV[i]
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XADD', KEYS[2], '*', 'v', ARGV[3], 'data', ARGV[i + 1])
    redis.call('XACK', KEYS[1], ARGV[1], id)
    appended = appended + 1
  end
end
return appended
"""


def append_and_ack(
    client: redis.Redis,
    work_stream: str,
    group: str,
    consumer: str,
    results_stream: str,
    results: Sequence[tuple[str, Mapping[str, Any]]],
) -> int:
    """For each (work message id, result payload): append the result and ack the work, atomically.

    Skips work this consumer no longer owns (re-claimed by another worker): that worker appends
    its own result, so each piece of work yields exactly one result message. Returns the count appended.
    """
    if not results:
        return 0
    argv: list[str] = [group, consumer, FORMAT_VERSION]
    for mid, payload in results:
        argv += [mid, encode(payload)["data"]]
    return int(client.eval(_APPEND_AND_ACK, 2, work_stream, results_stream, *argv))


# --- dead letters ---------------------------------------------------------------------------


def dead_letter(client: redis.Redis, group: str, message: Message, reason: str, detail: str = "") -> None:
    """Move ``message`` to the dead-letter stream with its reason, count it, and ack the original.

    One MULTI/EXEC, so a message is never both dead-lettered and still pending.
    """
    pipe = client.pipeline(transaction=True)
    pipe.xadd(
        DEAD_LETTER_STREAM,
        {
            "stream": message.stream,
            "group": group,
            "id": message.id,
            "reason": reason,
            "detail": detail[:2000],
            "deliveries": str(message.deliveries),
            "fields": json.dumps(message.fields, ensure_ascii=False)[:100_000],
            "at": str(time.time()),
        },
    )
    pipe.hincrby(DEAD_LETTER_COUNTS, f"{message.stream}|{reason}", 1)
    pipe.xack(message.stream, group, message.id)
    pipe.execute()
    log.warning("dead-lettered %s %s: %s %s", message.stream, message.id, reason, detail)


def dead_letter_counts(client: redis.Redis) -> dict[tuple[str, str], int]:
    """(stream, reason) -> number of messages dead-lettered for it."""
    raw: Any = client.hgetall(DEAD_LETTER_COUNTS) or {}
    out: dict[tuple[str, str], int] = {}
    for key, value in raw.items():
        stream, _, reason = str(key).rpartition("|")
        out[(stream, reason)] = int(value)
    return out


# --- heartbeats and throughput --------------------------------------------------------------


def worker_key(name: str) -> str:
    return f"{PREFIX}:worker:{name}"


@dataclass
class Heartbeat:
    """A worker's hash in Redis: kind, started, last beat, processed/failed totals, recent rate.

    ``beat(processed=n)`` adds n to the totals and refreshes the timestamp; ``rate`` is per second
    over the last RATE_WINDOW seconds (a batch can take longer than the beat interval). Status
    reads the hashes of every worker in WORKERS_SET.
    """

    client: redis.Redis
    name: str
    kind: str
    extra: dict[str, str] = field(default_factory=dict)
    _total: int = 0
    _history: deque[tuple[float, int]] = field(default_factory=deque)  # (time, total processed)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        now = time.time()
        self._history.append((now, 0))
        key = worker_key(self.name)
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(WORKERS_SET, self.name)
        pipe.delete(key)
        start: dict[Any, Any] = {
            "kind": self.kind,
            "started": now,
            "heartbeat": now,
            "processed": 0,
            "failed": 0,
            "rate": 0.0,
            "state": "running",
            **self.extra,
        }
        pipe.hset(key, mapping=start)
        pipe.expire(key, WORKER_TTL)
        pipe.execute()

    def beat(self, *, processed: int = 0, failed: int = 0, state: str = "running") -> None:
        with self._lock:  # a worker may beat from a keep-alive thread while its main thread works
            self._beat(processed, failed, state)

    def _beat(self, processed: int, failed: int, state: str) -> None:
        now = time.time()
        self._total += processed
        self._history.append((now, self._total))
        while len(self._history) > 2 and now - self._history[1][0] >= RATE_WINDOW:
            self._history.popleft()  # keep one sample at least RATE_WINDOW old
        since, before = self._history[0]
        rate = (self._total - before) / (now - since) if now > since else 0.0
        key = worker_key(self.name)
        pipe = self.client.pipeline(transaction=True)
        pipe.sadd(WORKERS_SET, self.name)
        pipe.hincrby(key, "processed", processed)
        pipe.hincrby(key, "failed", failed)
        fields: dict[Any, Any] = {"heartbeat": now, "state": state, "kind": self.kind, "rate": round(rate, 3)}
        pipe.hset(key, mapping=fields)
        pipe.expire(key, WORKER_TTL)
        pipe.execute()


def workers(client: redis.Redis) -> dict[str, dict[str, str]]:
    """Every known worker's heartbeat hash (expired ones are dropped from the set)."""
    out: dict[str, dict[str, str]] = {}
    names: Any = client.smembers(WORKERS_SET) or ()
    for name in sorted(str(n) for n in names):
        data: Any = client.hgetall(worker_key(name))
        if data:
            out[str(name)] = {str(k): str(v) for k, v in data.items()}
        else:
            client.srem(WORKERS_SET, name)
    return out


def _id_key(message_id: str) -> tuple[int, int]:
    ms, _, seq = message_id.partition("-")
    return int(ms), int(seq or 0)
