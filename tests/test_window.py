"""History windowing: the newest turns are kept, and a message that cannot fit is refused clearly."""

from __future__ import annotations

import pytest

from genai_chatbot.chat.window import first_kept_index, trim_start_to_user_turn
from genai_chatbot.models.errors import InvalidRequestError


def test_everything_is_kept_when_it_fits() -> None:
    assert first_kept_index([10, 10, 10], budget=30) == 0


def test_the_oldest_messages_are_dropped_first() -> None:
    assert first_kept_index([50, 10, 10, 10], budget=35) == 1
    assert first_kept_index([10, 10, 50, 10], budget=35) == 3


def test_a_last_message_larger_than_the_budget_is_refused_with_advice() -> None:
    with pytest.raises(InvalidRequestError, match="shorten it, lower max_tokens"):
        first_kept_index([10, 100], budget=50)


def test_a_kept_history_does_not_start_with_an_orphaned_answer() -> None:
    roles = ["user", "assistant", "user", "assistant", "user"]
    assert trim_start_to_user_turn(1, roles) == 2
    assert trim_start_to_user_turn(2, roles) == 2
    assert trim_start_to_user_turn(4, ["assistant"] * 5) == 4
