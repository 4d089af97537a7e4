"""One definition per task: prompt building and output cleanup.

The assistant uses these at inference and `distill` uses the very same functions to
format training data, so a student trains on exactly the prompts it will see.
"""
