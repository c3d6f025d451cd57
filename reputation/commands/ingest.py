"""`reputation ingest --redis URL`: the single writer of the distributed mode (Redis -> SQLite)."""

from __future__ import annotations

import json
import signal
import threading
from types import FrameType

import click

from reputation.commands.common import open_db, resolve_settings, say
from reputation.commands.worker import redis_option
from storage.lock import writer_lock


@click.command()
@redis_option
@click.option(
    "--once", "mode", flag_value="once", default=True, help="Move what is waiting, then exit (default)."
)
@click.option("--follow", "mode", flag_value="follow", help="Keep moving items and scores until stopped.")
@click.option(
    "--batch", default=500, show_default=True, type=click.IntRange(min=1), help="Messages per transaction."
)
@click.option("--no-enqueue", is_flag=True, help="Do not send unscored reviews to the scoring workers.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.pass_context
def ingest(
    ctx: click.Context, redis_url: str, mode: str, batch: int, no_enqueue: bool, as_json: bool
) -> None:
    """Move review items and scores from Redis into the database, in batches, idempotently.

    The only process that writes the SQLite file in the distributed mode: run it beside the
    file. It holds the database's writer lock, so a second writer refuses (exit 75). After the
    streams are empty it enqueues the reviews that the model of each running scoring worker has
    not scored. A message is acknowledged only after its batch is committed; messages that are
    not what their stream carries go to the dead-letter stream with their reason. Stored messages
    are trimmed from Redis. Once a crawl round (`reputation crawl --redis`) is over, its sources get
    their status and last crawl, and its run in the run log its counts, as a local crawl's do; a
    complete full crawl marks reviews removed under REPUTATION_REMOVAL_MAX_SHARE of the config
    file's [crawl] settings, as a local crawl does.

    \b
    Examples:
      reputation --db reviews.db ingest --redis redis://10.0.0.5:6379/0 --follow
      reputation --db reviews.db ingest --redis redis://127.0.0.1:6379/0 --once --json
    """
    from reputation.distributed import ingest as ingest_lib  # imports torch (via the scoring job): only here
    from reputation.distributed import streams
    from reputation.distributed.rounds import removal_max_share

    max_share = removal_max_share(resolve_settings(ctx, "crawl", None, {})["settings"])
    with writer_lock(ctx.find_root().obj["db_path"], purpose="reputation ingest"):
        db = open_db(ctx)
        client = streams.connect(redis_url, wait=mode == "follow")
        if mode == "follow":
            stop = threading.Event()

            def handler(signum: int, frame: FrameType | None) -> None:
                stop.set()

            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, handler)
            summary = ingest_lib.follow(client, db, stop=stop, batch=batch, enqueue=not no_enqueue,
                                        max_share=max_share)  # fmt: skip
        else:
            summary = ingest_lib.drain(client, db, batch=batch, enqueue=not no_enqueue, max_share=max_share)
    if as_json:
        click.echo(json.dumps(summary.as_dict(), sort_keys=True))
        return
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(summary.item_outcomes.items()))
    say(ctx, f"items {summary.items}" + (f" ({outcomes})" if outcomes else ""))
    say(ctx, f"scores stored {summary.scores.stored}, unchanged {summary.scores.unchanged}")
    if summary.scores.dead_lettered:
        say(
            ctx,
            "dead-lettered: "
            + ", ".join(f"{r} {n}" for r, n in sorted(summary.scores.dead_lettered.items())),
        )
    for closed in summary.crawl_rounds:
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(closed.by_status.items()))
        say(ctx, f"crawl round closed: run {closed.run_id} {closed.status}, {closed.pages} pages, "
                 f"{len(closed.sources)} sources ({statuses})")  # fmt: skip
    if summary.enqueued:
        say(ctx, "sent to scoring: " + ", ".join(f"{m} {n}" for m, n in sorted(summary.enqueued.items())))
