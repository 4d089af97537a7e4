"""What the CLI and the app do: every model call, prompt build and SQL statement they need.

    summarize   messages and threads → summaries
    reply       support-reply drafts
    chat        prompt, ask and grounded chat, with their history
    retrieval   collections: index, search, the demo knowledge base
    models      which model serves a task; listing, adding, defaults
    store       the SQLite history (responses, conversations, feedback)
    retrain     a new student from the user's kept drafts

Screens and commands call these and nothing below them (enforced by import-linter).
"""
