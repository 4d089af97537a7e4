"""The loop guard: a repeated line or a runaway run ends the stream, and nothing of the repeat is shown."""

from assistant.engine.loops import collapse_repeats, stop_loops


def pieces(text: str, n: int = 3):
    return [text[i : i + n] for i in range(0, len(text), n)]


def guarded(text: str, n: int = 3) -> str:
    return "".join(stop_loops(pieces(text, n)))


def test_a_repeated_line_ends_the_stream_before_the_repeat():
    text = "Hello,\nSorry about that.\n\nP.S. If you need help, ask.\nI hope this helps.\nP.S. If you need help, ask.\nmore"
    for n in (1, 3, 7):  # however the tokens fall, the repeat never shows, not even in part
        out = list(stop_loops(pieces(text, n)))
        assert "".join(out) == "Hello,\nSorry about that.\n\nP.S. If you need help, ask.\nI hope this helps.\n"


def test_a_runaway_run_is_cut_to_one_unit():
    out = guarded("CUSTOMER" + ">" * 300)  # a run shorter than 6 characters may already be out
    assert out.startswith("CUSTOMER>") and len(out) < len("CUSTOMER") + 6
    assert guarded("ok\n" + "#\n" * 100).startswith("ok\n#") and len(guarded("ok\n" + "#\n" * 100)) < 12


def test_ordinary_text_passes_untouched_and_closes_the_source():
    text = "Dear Ann,\nThanks.\nThanks.\nWait...... what? ----- ok\n| a | b |\n|---|---|\nBest regards,\nBob"
    assert guarded(text) == text  # short lines may repeat; short runs are fine

    closed = []

    def source():
        try:
            yield from pieces("A line that repeats.\nA line that repeats.\n" + "x" * 50)
        finally:
            closed.append(True)

    assert "".join(stop_loops(source())) == "A line that repeats.\n" and closed == [True]


def test_streaming_is_not_held_back_without_a_reason():
    out = list(stop_loops(pieces("The parcel left our warehouse today and should reach you soon.", 4)))
    assert len(out) > 10  # piece by piece, not one block at the end


def test_collapse_repeats():
    assert collapse_repeats("Not Much: Not Much: Not Much: Not") == "Not Much"
    assert collapse_repeats("Unfinished Project: Unfinished Project") == "Unfinished Project"
    assert collapse_repeats("Budget for Q3: final numbers") == "Budget for Q3: final numbers"


def test_a_numbered_list_repeating_its_item_under_a_new_number_is_a_loop():
    steps = "1. Get the account ID [1].\n2. Offer the refund [1].\n"
    text = steps + "".join(f"{i}. Guests wait for the item to arrive [1].\n" for i in range(3, 12))
    for n in (1, 2, 5):  # not even "4." of the repeat shows
        assert guarded(text, n) == steps + "3. Guests wait for the item to arrive [1].\n"
    bullets = "- Check the order status.\n- Refund the item.\n- Check the order status.\n- more"
    assert guarded(bullets) == "- Check the order status.\n- Refund the item.\n"
    distinct = "1. Check the order.\n2. Check the order status.\n10) Tell the customer.\n2023 was a good year.\n"
    assert guarded(distinct, 1) == distinct
