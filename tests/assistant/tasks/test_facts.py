"""invented_facts: the names, numbers and addresses a summary states that its source does not hold."""

from assistant.tasks.facts import invented_facts

SOURCE = ("From: Phillip Allen\nSubject: meeting\nPlease confirm the meeting with Jeff at EB 3267 on October 30th "
          "from 9:00 am. Budget $300,000. Write to jeff.s@enron.com")


def test_a_faithful_rephrasing_has_none():
    summary = ("Phillip asks Jeff to confirm the meeting at EB 3267 on October 30 at 9:00 am; the budget is "
               "$300,000. Contact jeff.s@enron.com. Shipping is not mentioned.")
    assert invented_facts(summary, SOURCE) == []


def test_invented_names_places_sums_dates_and_addresses_are_named():
    summary = "Phillip asks Sarah to meet in Houston on October 31 for $500; write to bob@x.com."
    assert invented_facts(summary, SOURCE) == ["bob@x.com", "31", "500", "Sarah", "Houston"]


def test_case_and_separators_do_not_matter_but_digits_do():
    assert invented_facts("PHILLIP and jeff: 300000 dollars, room 3267.", SOURCE) == []
    assert invented_facts("The room is 3276.", SOURCE) == ["3276"]


def test_a_title_case_subject_line_is_checked_for_numbers_not_capitals():
    assert invented_facts("Dispute Resolution Meeting Required by October 30", SOURCE) == []
    assert invented_facts("Dispute Resolution Meeting Required by October 31", SOURCE) == ["31"]


def test_another_form_of_a_source_word_is_not_a_name():
    assert invented_facts("The Agreements were signed in Germany.", "We signed the agreement; the German office agreed.") == []
