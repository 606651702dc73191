"""Trim a conversation to what fits a model's context window, newest turns kept."""

from __future__ import annotations

from collections.abc import Sequence

from genai_chatbot.models.errors import InvalidRequestError


def first_kept_index(message_tokens: Sequence[int], budget: int) -> int:
    """Index of the oldest message to keep so that the kept suffix fits in `budget` tokens.

    The newest message is always needed: when it alone does not fit, this raises `InvalidRequestError`.
    The kept history never starts with an assistant turn cut from its question, since a reply without
    its prompt confuses models more than a shorter history does.
    """
    if not message_tokens:
        return 0
    if message_tokens[-1] > budget:
        raise InvalidRequestError(
            f"The last message needs about {message_tokens[-1]} tokens but only {max(budget, 0)} fit in the "
            "model's context after the system prompt and the reply budget; shorten it, lower max_tokens, "
            "or choose a model with a larger context window.",
            param="messages",
        )
    used = 0
    first = len(message_tokens)
    for index in range(len(message_tokens) - 1, -1, -1):
        if used + message_tokens[index] > budget:
            break
        used += message_tokens[index]
        first = index
    return first


def trim_start_to_user_turn(first: int, roles: Sequence[str]) -> int:
    """Move `first` past assistant turns whose question was trimmed away (never past the last message)."""
    while first < len(roles) - 1 and roles[first] == "assistant":
        first += 1
    return first
