"""The Textual app under Pilot: a scripted model for the UI flows, the real 135M model for one end-to-end chat."""

import pytest

from assistant.services import store
from assistant.tui.app import make_app
from assistant.tui.widgets import ChatMessage, PromptInput
from tests.fakes import FakeModel

DEMO = __import__("pathlib").Path(__file__).resolve().parents[3] / "assets" / "demo" / "mailbox"


async def _wait_workers(pilot, app):
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.asyncio
async def test_starts_on_chat_with_input_focused_and_streams_a_reply():
    model = FakeModel(["Hello there, how can I help?"])
    app = make_app(model=model)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.focused, PromptInput)
        await pilot.press(*"hi", "enter")
        await _wait_workers(pilot, app)
        msgs = app.screen.query(ChatMessage)
        assert [m.role for m in msgs] == ["user", "assistant"]
        assert msgs[1].text.strip() == "Hello there, how can I help?"
    rows = store.search_logs(store.connect(), None, 5)
    assert rows[0]["prompt"] == "hi" and rows[0]["response"] == "Hello there, how can I help?"


@pytest.mark.asyncio
async def test_escape_stops_the_stream():
    model = FakeModel([" ".join(f"word{i}" for i in range(200))], delay=0.02)
    app = make_app(model=model)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("h", "enter")
        await pilot.pause(0.3)
        await pilot.press("escape")
        await _wait_workers(pilot, app)
        reply = app.screen.query(ChatMessage)[-1]
        assert 0 < len(reply.text.split()) < 200


@pytest.mark.asyncio
async def test_ctrl_j_adds_a_line_without_sending():
    app = make_app(model=FakeModel())
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a", "ctrl+j", "b")
        assert app.focused.text == "a\nb"
        assert not app.screen.query(ChatMessage)


@pytest.mark.asyncio
async def test_continue_reopens_last_conversation():
    app = make_app(model=FakeModel(["First answer."]))
    async with app.run_test() as pilot:
        await pilot.press(*"question one", "enter")
        await _wait_workers(pilot, app)
    app2 = make_app(model=FakeModel(), continue_last=True)
    async with app2.run_test() as pilot:
        await pilot.pause()
        texts = [m.text.strip() for m in app2.screen.query(ChatMessage)]
        assert texts == ["question one", "First answer."]


@pytest.mark.asyncio
async def test_mail_threads_summary_draft_and_feedback():
    model = FakeModel()
    app = make_app(model=model, mail_path=DEMO)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        await _wait_workers(pilot, app)
        table = app.screen.query_one("#threads")
        assert table.row_count == 5  # 8 messages, 5 threads
        model.enqueue("Dana reports a cracked mug and asks for a replacement.")
        await pilot.press("s")
        await _wait_workers(pilot, app)
        assert "cracked mug" in str(app.screen.query_one("#summary").render())
        model.enqueue("Hello, thanks for writing. We will send a replacement.")
        await pilot.press("r")
        await _wait_workers(pilot, app)
        draft = app.screen.query_one("#draft")
        assert "replacement" in draft.text
        draft.text = draft.text + " Best, Sam"
        await pilot.press("a")
        await pilot.pause()
    rows = store.list_feedback(store.connect(), "reply")
    assert rows and rows[0]["final"].endswith("Best, Sam") and not rows[0]["accepted"]


@pytest.mark.slow
@pytest.mark.asyncio
async def test_real_model_chat_end_to_end():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press(*"Hello! Who are you?", "enter")
        await _wait_workers(pilot, app)
        reply = app.screen.query(ChatMessage)[-1]
        assert reply.role == "assistant" and len(reply.text.split()) > 2


@pytest.mark.asyncio
async def test_grounded_chat_answers_with_the_ask_default(monkeypatch):
    """With "ground" on, a question goes to the `ask` default (a student trained on grounded answers), with its
    passages in the prompt; off again, the chat model answers. A model the user picked answers both."""
    plain, grounded = FakeModel(["Plain answer."]), FakeModel(["Reset it from the sign-in page [1]."])
    plain.name, grounded.name = "plain", "grounded"
    app = make_app()
    monkeypatch.setattr(app, "model_for", lambda task, covers=None: {"chat": plain, "ask": grounded}[task])
    async with app.run_test(size=(100, 30)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("ctrl+g", *"How do I reset my password?", "enter")
        await _wait_workers(pilot, app)
        assert app.screen.query(ChatMessage)[-1].text.startswith("Reset it from the sign-in page [1]")
        assert len(grounded.calls) == 1 and "<<<SOURCES" in grounded.calls[0][-1]["content"] and not plain.calls
        assert "model: grounded" in str(app.screen.query_one("#status").render())
        await pilot.press("ctrl+g", *"thanks", "enter")
        await _wait_workers(pilot, app)
        assert app.screen.query(ChatMessage)[-1].text.strip() == "Plain answer." and len(grounded.calls) == 1
