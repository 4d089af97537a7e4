"""distill: teach small students narrow jobs from a large teacher, on a CPU.

Stages (each a module with `run(cfg) -> Path` and a `distill` sub-command):
data → teach → train → eval → export → install; `distill run CONFIG.toml` chains them.
"""
