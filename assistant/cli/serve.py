"""`assistant serve`: every model behind an OpenAI-compatible API."""

from __future__ import annotations

import click

from assistant.cli.base import cli


@cli.command()
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback by default: your mail stays here.")
@click.option("--allow-remote", is_flag=True, help="Allow a --host other than loopback (needs an API key).")
@click.option("--api-key", envvar="ASSISTANT_API_KEY", metavar="KEY",
              help="Require `Authorization: Bearer KEY` on every request [env: ASSISTANT_API_KEY].")
def serve(port, host, allow_remote, api_key):
    """Serve the installed models as an OpenAI-compatible API (llama-cpp-python's server).

    Prints the address and the models on stderr, then one line per request. A model that
    cannot be served (file gone, chat template refused) is left out with a warning.

    Example usage:

    \b
        assistant serve --port 8080
        curl localhost:8080/v1/models
        assistant summarize x.eml --model openai:summarize-smollm2-135m-v4 --base-url http://127.0.0.1:8080/v1
    """
    from assistant.services.serve import serve as run

    run(host, port, allow_remote, api_key)
