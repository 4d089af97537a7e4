"""Training and runtime send the same messages: for every task, the prompt `distill data` builds for an
input equals the prompt the assistant sends a model for that input (the CLI's and the app's services,
and the app's chat screen itself under Pilot)."""

from __future__ import annotations

import json
import textwrap

import pytest

from assistant import tasks
from assistant.mail import group_threads, read_mail
from assistant.services import reply as reply_service
from assistant.services import summarize as summarize_service
from distill.config import load_config
from distill.data import build_examples
from tests.fakes import FakeModel

FIRST = textwrap.dedent("""\
    From: Ana Ruiz <ana@example.org>
    To: ops@example.org
    Subject: Server move on Friday
    Date: Mon, 02 Mar 2026 09:15:00 +0000
    Message-ID: <move-1@example.org>

    Hi team, we move the billing server to the new rack on Friday at 18:00.
    Please stop the nightly jobs by 17:30 and tell me if that is a problem.
    """)
SECOND = textwrap.dedent("""\
    From: Bo Lin <bo@example.org>
    To: ana@example.org
    Subject: Re: Server move on Friday
    Date: Mon, 02 Mar 2026 11:40:00 +0000
    Message-ID: <move-2@example.org>
    In-Reply-To: <move-1@example.org>
    References: <move-1@example.org>

    Friday works. I will stop the jobs at 17:00 and restart them on Saturday morning.
    """)


def _mailbox(tmp_path):
    box = tmp_path / "mail"
    box.mkdir()
    (box / "1.eml").write_text(FIRST)
    (box / "2.eml").write_text(SECOND)
    return box


def _training(tmp_path, task: str, kind: str, path) -> list[dict]:
    cfg = tmp_path / f"{task}.toml"
    cfg.write_text(f'name = "parity"\ntask = "{"support" if task in ("reply", "chat") else "summarize"}"\n'
                   f'[[data.sources]]\nkind = "{kind}"\npath = "{path}"\ntask = "{task}"\ntarget = "teacher"\n')
    return list(build_examples(load_config(cfg)))


class Recorder(FakeModel):
    prompt_version = None  # the untrained base's: today's prompts, as `distill data` builds them


@pytest.mark.parametrize("length", ["line", "short", "long"])
def test_a_summary_prompt_is_the_one_training_built(tmp_path, length):
    box = _mailbox(tmp_path)
    trained = {ex["id"].split(":")[1]: ex for ex in _training(tmp_path, f"summarize-{length}", "mail", box)}
    model = Recorder()
    for msg in read_mail(box):
        summarize_service.summarize_message(model, msg, length, samples=0)
        assert model.calls[-1] == trained[msg.message_id]["messages"]
        assert trained[msg.message_id]["prompt_version"] == tasks.task(f"summarize-{length}").current


@pytest.mark.parametrize("length", ["short", "long"])
def test_a_thread_summary_prompt_is_the_one_training_built(tmp_path, length):
    box = _mailbox(tmp_path)
    [trained] = _training(tmp_path, f"summarize-thread-{length}", "mail", box)
    [thread] = group_threads(list(read_mail(box)))
    model = Recorder()
    summarize_service.summarize_thread(model, thread, length, samples=0)
    assert model.calls[-1] == trained["messages"]
    assert "Subject: Server move on Friday" in trained["messages"][-1]["content"]


@pytest.mark.parametrize("length", ["short", "long"])
def test_a_long_threads_map_and_reduce_prompts_are_the_ones_training_built(tmp_path, length):
    """A thread too long for one prompt: the assistant asks for each message's summary, then for the thread
    from those summaries; training's map examples are those message prompts, and the reduce prompt
    `distill teach` builds from the same summaries is the thread prompt the assistant sends."""
    from distill.teach import reduce_examples

    box = _mailbox(tmp_path)
    filler = " ".join(f"Step {k}: check rack {k} cabling and note the result in the sheet." for k in range(40))
    for name in ("1.eml", "2.eml"):
        (box / name).write_text((box / name).read_text() + filler + "\n")
    rows = _training(tmp_path, f"summarize-thread-{length}", "mail", box)
    maps = [r for r in rows if r.get("meta", {}).get("map_of")]
    [reduce] = [r for r in rows if "map" in r]
    assert len(maps) == 2
    model = Recorder(["Ana moves the billing server on Friday.", "Bo will stop the jobs at 17:00.", "The thread."])
    [thread] = group_threads(list(read_mail(box)))
    summarize_service.summarize_thread(model, thread, length, samples=0)
    assert model.calls[:2] == [m["messages"] for m in maps]
    done = {m["id"]: {"id": m["id"], "task": m["task"], "ok": True, "output": out}
            for m, out in zip(maps, ["Ana moves the billing server on Friday.", "Bo will stop the jobs at 17:00."])}
    [built] = reduce_examples(rows, done)
    assert model.calls[2] == built["messages"]


def test_a_reply_prompt_is_the_one_training_built(tmp_path):
    box = _mailbox(tmp_path)
    trained = {ex["id"].split(":")[1]: ex for ex in _training(tmp_path, "reply", "mail", box)}
    model = Recorder(["Hello,", "Hello,"])
    for msg in read_mail(box):
        reply_service.draft_reply(model, msg)
        assert model.calls[-1] == trained[msg.message_id]["messages"]


@pytest.mark.asyncio
async def test_the_apps_chat_sends_the_prompt_the_chat_turns_were_trained_on(tmp_path):
    """The support student's chat turns (ABCD conversations) are trained under the chat task's system
    prompt; the app's chat screen must send the same system prompt and turns."""
    from assistant.tui.app import make_app
    from assistant.tui.widgets import PromptInput

    turns = [["customer", "Hi, my promo code SPRING10 is rejected at checkout."],
             ["agent", "Sorry about that. Which item is in your cart?"],
             ["customer", "The blue running shoes, size 42."],
             ["agent", "Thanks, I will check the code for that item."]]
    convo = tmp_path / "abcd.json"
    convo.write_text(json.dumps([{"convo_id": 7, "original": turns}]))
    trained = {ex["id"]: ex["messages"] for ex in _training(tmp_path, "chat", "abcd", convo)}
    assert trained["abcd:7:1"][0]["content"] == tasks.task("chat").system()

    model = Recorder([turns[1][1], turns[3][1]])
    app = make_app(model=model)
    async with app.run_test(size=(100, 30)) as pilot:
        for text in (turns[0][1], turns[2][1]):
            app.screen.query_one(PromptInput).post_message(PromptInput.Submitted(text))
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
    assert model.calls == [trained["abcd:7:1"], trained["abcd:7:3"]]


@pytest.mark.parametrize("version", tasks.versions_of("support"))
def test_chat_turns_carry_the_reply_prompts_system_message_of_their_version(version):
    """The support student learned its chat turns beside replies of one prompt version: a chat under that
    version opens with that version's reply system message (v1's talks of fences v2 students never saw)."""
    reply = tasks.task("reply").prompt("Where is my order?", version=version).messages
    chat = tasks.task("chat").prompt([], "Where is my order?", version=version).messages
    assert chat[0] == reply[0] and chat[0]["role"] == "system"
