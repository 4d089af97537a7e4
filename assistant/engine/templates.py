"""Chat templates come from model files: rendered in a bounded Jinja sandbox, never trusted.

    text = render_chat(template, messages)     # ChatTemplateRefused when the template reaches too far

Bounds: range() and integer arguments, sizes of concatenations, repeats and formats, output size,
and time and Python steps (counted by an in-thread tracer, so nothing is left running).
"""

from __future__ import annotations

import functools
import re
import sys
import time

from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from assistant import AssistantError


class ChatTemplateRefused(AssistantError):
    """A model's chat template did something the sandbox forbids, or ran past its time or size bounds."""


# Bounds for a chat template (model files are untrusted). A real template renders a long chat in a
# few thousand traced steps and well under a millisecond.
TEMPLATE_SECONDS = 2.0
TEMPLATE_STEPS = 2_000_000  # Python line/call events while rendering
TEMPLATE_MAX_INT = 100_000  # largest range() and int argument a template may pass to a call or filter
_WIDE_FORMAT = re.compile(r"\d{7,}")  # a 7-digit width in a %/format string builds megabytes at once


class _OverBudget(BaseException):
    """Raised by the tracer; a BaseException so no `except Exception` inside jinja can swallow it."""


class _BoundedConcat(CodeGenerator):
    """Compiles `a ~ b` to a length-checked join: doubling a string in a loop is otherwise free."""

    def visit_Concat(self, node, frame) -> None:
        self.write("environment.checked(")
        super().visit_Concat(node, frame)
        self.write(")")


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus caps on what one expression can build: range() and int arguments
    (TEMPLATE_MAX_INT), strings and lists made by `*`, `+`, `~`, `%` and filters (`max_text`)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedConcat

    def __init__(self, max_text: int) -> None:
        super().__init__(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
        self.max_text = max_text
        self.globals["range"] = self._range
        self.filters = {k: self._bounded_filter(f) for k, f in self.filters.items()}

    def checked(self, value):
        if hasattr(value, "__len__") and len(value) > self.max_text:
            raise SecurityError(f"it builds a value of {len(value)} items (the bound is {self.max_text})")
        return value

    def _check_args(self, args, kwargs) -> None:
        for a in (*args, *kwargs.values()):
            if isinstance(a, int) and not isinstance(a, bool) and abs(a) > TEMPLATE_MAX_INT:
                raise SecurityError(f"it passes {a} to a call (the bound is {TEMPLATE_MAX_INT})")

    def _range(self, *args: int) -> range:
        self._check_args(args, {})
        return range(*args)

    def _bounded_filter(self, f):
        skip = 2 if getattr(f, "jinja_pass_arg", None) else 1  # the context/env and the filtered value

        @functools.wraps(f)
        def bounded(*args, **kwargs):
            self._check_args(args[skip:], kwargs)
            return self.checked(f(*args, **kwargs))

        return bounded

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's own signature)
        __self._check_args(args, kwargs)
        return __self.checked(super().call(__context, __obj, *args, **kwargs))

    def call_binop(self, context, operator: str, left, right):
        if operator == "**" and isinstance(right, int) and abs(right) > 1024:
            raise SecurityError(f"it raises to the power {right}")
        if operator == "*" and hasattr(left, "__len__") != hasattr(right, "__len__"):
            seq, n = (left, right) if hasattr(left, "__len__") else (right, left)
            if isinstance(n, int) and len(seq) * n > self.max_text:
                raise SecurityError(f"it repeats a value {n} times")
        if operator == "+" and hasattr(left, "__len__") and hasattr(right, "__len__"):
            self.checked(range(len(left) + len(right)))
        if operator == "%" and isinstance(left, str) and _WIDE_FORMAT.search(left):
            raise SecurityError("it formats with a huge width")
        return self.checked(super().call_binop(context, operator, left, right))

    def wrap_str_format(self, value):
        fmt = super().wrap_str_format(value)
        if fmt is not None and _WIDE_FORMAT.search(value.__self__):
            raise SecurityError("it formats with a huge width")
        return fmt


def _traced(fn, seconds: float, steps: int):
    """Run fn() with a tracer that counts Python events in this thread and stops it at the bounds.

    In-thread, so nothing is left running when it stops (a watchdog thread could not stop it)."""
    deadline, count = time.monotonic() + seconds, 0

    def tracer(frame, event, arg):
        nonlocal count
        count += 1
        if count % 1024 == 0 and (count > steps or time.monotonic() > deadline):
            raise _OverBudget
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        return fn()
    finally:
        sys.settrace(previous)


def render_chat(template: str, messages: list[dict], bos: str = "", eos: str = "", **context) -> str:
    """Render a GGUF chat template in a bounded Jinja sandbox (templates come from model files).

    Raises:
        ChatTemplateRefused: the template touched something unsafe or ran past its time or size bounds.
        AssistantError: the template is invalid, or it refused the messages (`raise_exception`).
    """
    max_text = (1 << 20) + 2 * len(repr((messages, context)))

    def raise_exception(message: str):
        raise AssistantError(f"chat template: {message}".splitlines()[0])

    def render(compiled) -> str:
        out, size = [], 0
        for piece in compiled.generate(
            messages=messages, add_generation_prompt=True, bos_token=bos, eos_token=eos, **context
        ):
            size += len(piece)
            if size > max_text:
                raise SecurityError(f"its output passes {max_text} characters")
            out.append(piece)
        return "".join(out)

    try:
        env = _BoundedSandbox(max_text)
        env.globals["raise_exception"] = raise_exception
        compiled = env.from_string(template)  # parsing is linear in the template's length: not traced
        return _traced(lambda: render(compiled), TEMPLATE_SECONDS, TEMPLATE_STEPS)
    except AssistantError:
        raise
    except _OverBudget:
        raise ChatTemplateRefused(
            f"the model's chat template was refused: it ran past {TEMPLATE_SECONDS:g}s or {TEMPLATE_STEPS} steps"
        ) from None
    except (SecurityError, RecursionError, MemoryError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ChatTemplateRefused(f"the model's chat template was refused: {reason}") from None
    except TemplateSyntaxError as e:
        raise AssistantError(f"the model's chat template is invalid: {e.message} (line {e.lineno})") from None
    except Exception as e:  # a template error on these messages (undefined names, bad types)
        first = (str(e).splitlines() or [""])[0]
        raise AssistantError(f"the model's chat template failed: {type(e).__name__}: {first}") from None
