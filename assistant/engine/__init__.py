"""Running models on the CPU, knowing no task: what a model is and how it streams (models), GGUF files
(gguf_check reads and vets headers, gguf_tools folds adapters into cached merged files), the registry of
installed models, the OpenAI-compatible server, the multi-sequence generator (batched) and loop stops.

Nothing here imports `assistant.tasks` or `assistant.services` (import-linter enforces it).
"""
