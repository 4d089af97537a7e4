"""One Task object per job: what the model is asked, with which prompt, and how its answer is cleaned.

    from assistant.tasks import task
    t = task("summarize-short")
    prompt = t.prompt(t.text(Email(body, subject, sender, date)))
    prompt.messages, prompt.payloads, prompt.version     # chat messages, injection payloads, prompt version
    summary = t.clean(model_output)

The assistant builds every prompt here at inference and `distill data` builds its training prompts
with the very same objects, so a student trains on exactly the prompts it will see (a parity test
checks it for every task). The prompt version is recorded on the Prompt when it is built.

Tasks: summarize-line|short|long, summarize-thread-short|long, reply, chat, ask.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from assistant.tasks import ask as ask_module
from assistant.tasks import reply as reply_module
from assistant.tasks import summarize as summarize_module

# which runtime tasks (the ones a user picks a default model for) a student of each kind serves
RUNTIME_TASKS = ("chat", "summarize", "reply", "ask")
SERVES = {"summarize": ("summarize",), "support": ("reply", "chat", "ask")}
# the training task a runtime task's default must have learned, when its manifest lists tasks: a grounded
# student (ask, reply+kb) is no default for plain replies, nor a reply student for `ask` (reply --kb asks for
# reply+kb; summaries name their lengths at the call)
COVERS = {"chat": "chat", "reply": "reply", "ask": "ask"}


@dataclass(frozen=True)
class Email:
    """One message as a task reads it."""

    body: str
    subject: str = ""
    sender: str = ""
    date: str | None = None


@dataclass(frozen=True)
class Prompt:
    messages: list[dict]
    payloads: list[str] = field(default_factory=list)  # injection payloads found in the input (scrubbed from outputs)
    version: str = ""


@dataclass(frozen=True)
class Task:
    """A job a model does. Subclasses say how its input becomes text and the text a prompt."""

    name: str
    student: str  # the kind of student trained for it: summarize | support
    max_tokens: int
    versions: tuple[str, ...]

    @property
    def current(self) -> str:
        return self.versions[-1]

    def version_for(self, trained: str | None) -> str:
        """The prompt version to build for a model trained on `trained` (its manifest), else the current one."""
        return trained if trained in self.versions else self.current

    def clean(self, output: str) -> str:
        return output.strip()


@dataclass(frozen=True)
class SummarizeTask(Task):
    length: str = "short"
    thread: bool = False

    def text(self, item: Email | list[Email], subject: str = "") -> str:
        """What the model summarizes: one email (its body alone for a subject line), or a thread."""
        if isinstance(item, list):
            body = summarize_module.thread_text([(m.sender, m.date, m.body) for m in item])
            return summarize_module.email_text(subject, "", body)
        return summarize_module.input_text(item.body, item.subject, item.sender, item.date, self.length)

    def run_text(self, item: Email) -> str:
        """`text` of one email as the assistant reads it at run time: a subject line reads only the head of the
        body (summarize.LINE_HEAD_CHARS); training and the report card read it whole."""
        if self.length == "line":
            item = replace(item, body=summarize_module.head(item.body))
        return self.text(item)

    def prompt(self, text: str, version: str | None = None) -> Prompt:
        version = version or self.current
        messages, payloads = summarize_module.build_messages(text, self.length, thread=self.thread, version=version)
        return Prompt(messages, payloads, version)

    def clean(self, output: str) -> str:
        return summarize_module.clean(output, self.length)

    # Long threads, map-reduce: a thread too long for one prompt is not cut. Each message is summarized on
    # its own (its short summary, MAP_LENGTH), then the thread from those summaries, each under its
    # sender and date, with the thread prompt (`reduced_text`). The teacher's targets and the student at
    # run time take the same path.
    MAP_LENGTH = "short"

    def needs_map(self, item: list[Email]) -> bool:
        return self.thread and not summarize_module.fits_whole([(m.sender, m.date, m.body) for m in item])

    def reduced_text(self, item: list[Email], summaries: list[str], subject: str = "") -> str:
        """The thread as its messages' summaries: what the reduce step summarizes."""
        body = summarize_module.thread_text([(m.sender, m.date, f"(in brief) {s}") for m, s in zip(item, summaries, strict=True)])
        return summarize_module.email_text(subject, "", body)


@dataclass(frozen=True)
class ReplyTask(Task):
    def text(self, item: Email) -> str:
        return item.body

    def prompt(self, text: str, version: str | None = None, subject: str = "", kb: list[str] | None = None) -> Prompt:
        version = version or self.current
        messages, payloads = reply_module.build_messages(text, subject, kb, version)
        return Prompt(messages, payloads, version)

    def clean(self, output: str) -> str:
        return reply_module.clean(output)


@dataclass(frozen=True)
class ChatTask(Task):
    """A conversation with the support student. Its chat turns were trained under the reply prompt's
    system message of the same version, so that is the default system prompt here."""

    def system(self, version: str | None = None) -> str:
        return reply_module.SYSTEM if (version or self.current) == "reply-v1" else reply_module.SYSTEM_V2

    def prompt(self, history: list[dict], text: str | None, version: str | None = None,
               system: str | None = None) -> Prompt:
        """`history` of {"role", "content"} turns, then `text` as the next user turn (None: end at the
        history, as training does for the agent turn it predicts). `system` overrides the default;
        an empty string sends none."""
        version = version or self.current
        system = self.system(version) if system is None else system
        head = [{"role": "system", "content": system}] if system else []
        tail = [{"role": "user", "content": text}] if text is not None else []
        return Prompt(head + list(history) + tail, [], version)


@dataclass(frozen=True)
class AskTask(Task):
    def prompt(self, question: str, passages: list[str], history: list[dict] | None = None) -> Prompt:
        system, user = ask_module.build_messages(question, passages)
        return Prompt([system, *(history or []), user], [], self.current)


def _summaries() -> dict[str, Task]:
    out: dict[str, Task] = {}
    for length in summarize_module.LENGTHS:
        out[f"summarize-{length}"] = SummarizeTask(f"summarize-{length}", "summarize", summarize_module.MAX_TOKENS[length],
                                                   summarize_module.VERSIONS, length)
        if length != "line":
            name = f"summarize-thread-{length}"
            out[name] = SummarizeTask(name, "summarize", summarize_module.MAX_TOKENS[length], summarize_module.VERSIONS,
                                      length, thread=True)
    return out


def summary_tasks(length: str, threads: bool = False) -> tuple[str, ...]:
    """The tasks a summary of `length` is made with: the email's, and with `threads` the thread's too (a
    thread's subject line is made as an email's, and a long thread's messages are summarized as emails)."""
    names = (f"summarize-{length}",) + ((f"summarize-thread-{length}",) if threads else ())
    return tuple(n for n in names if n in TASKS)


TASKS: dict[str, Task] = {
    **_summaries(),
    "reply": ReplyTask("reply", "support", reply_module.MAX_TOKENS, reply_module.VERSIONS),
    "chat": ChatTask("chat", "support", 400, reply_module.VERSIONS),
    "ask": AskTask("ask", "support", 400, ("ask-v1", ask_module.PROMPT_VERSION)),
}


def task(name: str) -> Task:
    """The task called `name` (e.g. summarize-short, summarize-thread-long, reply, chat, ask)."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; one of {', '.join(TASKS)}") from None


def for_summary(length: str, thread: bool = False) -> SummarizeTask:
    return TASKS[f"summarize-thread-{length}" if thread and length != "line" else f"summarize-{length}"]  # type: ignore[return-value]


def versions_of(student: str) -> tuple[str, ...]:
    """The prompt versions a student kind can have been trained on."""
    return {"summarize": summarize_module.VERSIONS, "support": reply_module.VERSIONS}.get(student, ())


def current_version(student: str) -> str:
    return {"summarize": summarize_module.PROMPT_VERSION, "support": reply_module.PROMPT_VERSION}[student]
