"""`assistant serve`: every model behind an OpenAI-compatible API."""

from __future__ import annotations


import click

from assistant.cli.base import cli




@cli.command()
@click.option("--port", default=8080, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback by default: your mail stays here.")
def serve(port, host):
    """Serve the installed models as an OpenAI-compatible API (llama-cpp-python's server).

    Example usage:

    \b
        assistant serve --port 8080
        curl localhost:8080/v1/models
    """
    from assistant.engine.server import serve as run

    run(host, port)
