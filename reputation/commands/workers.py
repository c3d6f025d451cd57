"""`reputation workers status --redis URL`: queues, pending work, dead letters and workers at a glance."""

from __future__ import annotations

import json

import click

from reputation.commands.worker import redis_option


@click.group()
def workers() -> None:
    """Watch the workers of the distributed (Redis) mode.

    \b
    Example:
      reputation workers status --redis redis://10.0.0.5:6379/0
    """


@workers.command("status")
@redis_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def status(redis_url: str, as_json: bool) -> None:
    """Queue depths (frontier, items, scoring work, scores), pending messages per consumer,
    dead-lettered messages by reason, and each worker's throughput and last heartbeat.

    A worker marked SILENT sent no heartbeat for a minute (killed, or cut off from Redis); its
    pending messages are taken over by the others.

    \b
    Examples:
      reputation workers status --redis redis://10.0.0.5:6379/0
      reputation workers status --redis redis://10.0.0.5:6379/0 --json | jq .dead_letters
    """
    from reputation.distributed import status as status_lib
    from reputation.distributed import streams

    client = streams.connect(redis_url, wait=False)
    result = status_lib.collect(client)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2, sort_keys=True))
    else:
        click.echo(status_lib.render(result))
