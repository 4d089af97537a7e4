"""`assistant index` and `assistant search`: retrieval over your own mail and documents."""

from __future__ import annotations

import json
import sys

import click

from assistant.cli.base import cli


@cli.group()
def index():
    """Index mail and documents for search and grounded answers.

    Example usage:

    \b
        assistant index add ~/Mail/INBOX notes/ --collection work
        assistant index list
    """


@index.command("add")
@click.argument("paths", nargs=-1, required=True)
@click.option("--collection", "-C", default="default", show_default=True, help="Which collection (a named index).")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def index_add(paths, collection, as_json):
    """Add folders, .eml, mbox, Maildir, .md, .txt, .html, .pdf, .docx, .csv, .jsonl.

    Incremental (unchanged files are skipped) and safe to kill at any moment: run it again.
    Mail is indexed per message (quoted text once); documents in chunks of about 100-250 words.

    Example usage:

    \b
        assistant index add ~/Mail/INBOX
        assistant index add ~/notes kb/*.md --collection work --json
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from assistant.services import retrieval

    idx = retrieval.open_index()
    with Progress(TextColumn("indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True,
                  disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("", total=None, rate="")

        def progress(stats, total):
            rate = stats.chunks / max(1e-6, bar.tasks[0].elapsed or 1e-6)
            bar.update(task, total=total, completed=stats.files_seen, rate=f"{stats.chunks} chunks, {rate:.0f}/s")

        stats = idx.add(list(paths), collection, progress)
    summary = {"collection": collection, "files": stats.files_seen, "indexed": stats.files_indexed,
               "unchanged": stats.files_skipped, "chunks": stats.chunks, "seconds": round(stats.seconds, 1),
               "errors": [{"path": p, "error": e} for p, e in stats.errors]}
    nothing = bool(stats.errors) and not stats.files_seen  # nothing done, and something went wrong: exit 1
    if as_json:
        click.echo(json.dumps(summary))
        if nothing:
            raise SystemExit(1)
        return
    click.echo(f"{stats.files_indexed} indexed, {stats.files_skipped} unchanged, {stats.chunks} chunks "
               f"in {stats.seconds:.1f}s ({stats.chunks / max(stats.seconds, 1e-6):.0f} chunks/s)")
    if stats.errors:
        click.echo(f"{len(stats.errors)} file(s) could not be read:", err=True)
        for p, e in stats.errors:
            click.echo(f"  {p}: {e}", err=True)
    if nothing:
        raise SystemExit(1)


@index.command("sync")
@click.option("--collection", "-C", default="default", show_default=True, help="Which collection (a named index).")
def index_sync(collection):
    """Re-index changed files under the collection's folders and drop deleted ones.

    Example usage:

    \b
        assistant index sync --collection work
    """
    from assistant.services import retrieval

    idx = retrieval.open_index()
    dropped = idx.sync(collection)
    stats = idx.add(idx.roots(collection), collection) if idx.roots(collection) else None
    click.echo(f"dropped {dropped}; " + (f"{stats.files_indexed} re-indexed, {stats.files_skipped} unchanged" if stats else ""))


@index.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per collection.")
def index_list(as_json):
    """Collections with their file and chunk counts."""
    from assistant.services import retrieval

    for c in retrieval.open_index().collections():
        click.echo(json.dumps(c) if as_json else f"{c['name']:20} {c['files']:6} files {c['chunks']:8} chunks  {c['model_id']}")


@index.command("stats")
@click.option("--collection", "-C", default="default", show_default=True, help="Which collection (a named index).")
def index_stats(collection):
    """Counts for one collection, and files that could not be read."""
    from assistant.services import retrieval

    idx = retrieval.open_index()
    c = next((c for c in idx.collections() if c["name"] == collection), None)
    if not c:
        raise click.ClickException(f"no collection named {collection!r}")
    errors = idx.db.execute("SELECT path, error FROM files WHERE collection = ? AND error IS NOT NULL", (collection,)).fetchall()
    click.echo(json.dumps({**c, "roots": idx.roots(collection), "unreadable": [dict(e) for e in errors]}, indent=2))


@index.command("remove")
@click.argument("collection")
def index_remove(collection):
    """Delete a collection from the index (your files stay)."""
    from assistant.services import retrieval

    retrieval.open_index().remove(collection)
    click.echo(f"removed {collection}")


@cli.command()
@click.argument("query", required=False)
@click.option("--collection", "-C", default="default", show_default=True, help="Which collection (a named index).")
@click.option("-k", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many hits.")
@click.option("--mode", type=click.Choice(["hybrid", "lexical", "dense"]), default="hybrid", show_default=True,
              help="lexical: BM25 on words; dense: MiniLM embeddings; hybrid: both, fused.")
@click.option("--batch", type=click.File(), help='JSONL of {"id", "query"}; prints {"id", "hits"} lines.')
@click.option("--json", "as_json", is_flag=True, help="One JSON object per hit.")
def search(query, collection, k, mode, batch, as_json):
    """Search a collection: words and meaning together (hybrid), or either alone.

    Each hit has its path, mail message id, chunk, score and a snippet.

    Example usage:

    \b
        assistant search "contract renewal" --collection work
        assistant search "refund for a damaged item" -C demo-kb -k 3 --json
        assistant search --batch queries.jsonl -C work > hits.jsonl
    """
    from assistant.services import retrieval

    idx = retrieval.open_index()
    collection = retrieval.collection(collection, idx)
    if batch:
        for n, line in enumerate(batch, 1):
            if not line.strip():
                continue
            try:
                q = json.loads(line)
                hits = idx.search(str(q["query"]), collection, k, mode)
            except (ValueError, KeyError, TypeError) as e:
                click.echo(f"error: {batch.name}:{n}: {type(e).__name__}: {e}", err=True)
                continue
            click.echo(json.dumps({"id": q.get("id"), "hits": [h.to_json() for h in hits]}))
        return
    if not query:
        raise click.UsageError("give a QUERY or --batch FILE")
    for h in idx.search(query, collection, k, mode):
        click.echo(json.dumps(h.to_json()) if as_json else f"{h.score:.3f}  {h.path}  {h.title}\n        {h.snippet}")
