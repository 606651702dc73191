"""`genai-chatbot chat`: a terminal chat on the same sessions and history as the server.

It runs the chat service in-process (no server needed). Ctrl-C during an answer stops it (the partial
answer is kept as cancelled); Ctrl-C or Ctrl-D at the prompt leaves.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from typing import Annotated

import typer

from genai_chatbot.auth.principal import ANONYMOUS_USER, Principal
from genai_chatbot.chat.service import (
    ChatService,
    GenerationOptions,
    SessionNotFoundError,
    TurnEnded,
    TurnInProgressError,
)
from genai_chatbot.cli.common import ConfigOption, settings_or_exit
from genai_chatbot.cli.users import LOCAL_USER, caller_named
from genai_chatbot.governance.errors import GovernanceError, ModelNotAllowedError
from genai_chatbot.models.errors import ModelError
from genai_chatbot.models.inputs import chat_models
from genai_chatbot.models.types import ChatChunk

#: How many of the most recent sessions `/open` searches for an id prefix.
OPEN_SEARCH_LIMIT = 10_000
HELP = """Commands:
  /model ID     switch model (see /models)      /models     list models
  /new          start a new session             /sessions   list your sessions
  /open ID      continue a session (the first characters of its id will do)
  /help         this text                       /exit       leave (or Ctrl-D)"""


class TerminalChat:
    """The state of one terminal conversation: which session and model the next message goes to."""

    def __init__(
        self,
        service: ChatService,
        model_id: str,
        options: GenerationOptions,
        system: str | None,
        caller: Principal = LOCAL_USER,
    ) -> None:
        self.service = service
        self.caller = caller  # whose sessions, and whose groups decide the models
        self.model_id = model_id
        self.options = options
        self.system = system
        self.session_id: str | None = None

    def say(self, text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    async def command(self, line: str) -> bool:
        """Run one slash command; False when the user asked to leave."""
        name, _, argument = line.partition(" ")
        argument = argument.strip()
        if name in ("/exit", "/quit"):
            return False
        if name == "/new":
            self.session_id = None
            self.say("New session: your next message starts it.")
        elif name == "/model":
            if not argument:
                self.say(f"Current model: {self.model_id}. Usage: /model ID")
            else:
                info = await self.service.allowed_model(self.caller, argument)
                self.model_id = info.id
                self.say(f"Model: {info.id}" + ("" if info.available else f" (unavailable: {info.unavailable_reason})"))
        elif name == "/models":
            for m in chat_models(await self.service.list_models(self.caller)):
                mark = "*" if m.id == self.model_id else " "
                self.say(f" {mark} {m.id}" + ("" if m.available else f"  (unavailable: {m.unavailable_reason})"))
        elif name == "/sessions":
            sessions = await self.service.list_sessions(self.caller.user_id, limit=20)
            if not sessions:
                self.say("No sessions yet.")
            for s in sessions:
                when = datetime.fromtimestamp(s.updated_at).strftime("%Y-%m-%d %H:%M")
                self.say(f"  {s.id}  {when}  {s.model_id}  {s.title or '(untitled)'}")
        elif name == "/open":
            session_id = await self.find_session(argument)
            if session_id is not None:
                session, messages = await self.service.session_messages(self.caller.user_id, session_id)
                self.session_id, self.model_id = session.id, session.model_id
                for message in messages[-6:]:
                    self.say(f"{message.role}> {message.content}")
                self.say(f"Continuing session {session.id} with {session.model_id}.")
        else:
            self.say(HELP)
        return True

    async def find_session(self, prefix: str) -> str | None:
        """The id of the one session whose id is or starts with `prefix`; None (having said why) otherwise.

        Ids are long; `/sessions` shows them whole, and the first few characters are enough to open one.
        """
        if not prefix:
            self.say("Usage: /open ID, the whole id or its first characters; /sessions lists your sessions.")
            return None
        sessions = await self.service.list_sessions(self.caller.user_id, limit=OPEN_SEARCH_LIMIT)
        matches = [s for s in sessions if s.id == prefix] or [s for s in sessions if s.id.startswith(prefix)]
        if len(matches) == 1:
            return matches[0].id
        if not matches:
            self.say(f"No session of yours has an id starting with {prefix!r}; /sessions lists them.")
            return None
        self.say(f"{len(matches)} sessions have an id starting with {prefix!r}; type more of it:")
        for s in matches:
            self.say(f"  {s.id}  {s.model_id}  {s.title or '(untitled)'}")
        return None

    async def send(self, content: str) -> None:
        """Send one message and stream the answer to the terminal."""
        if self.session_id is None:
            session = await self.service.create_session(self.caller, model_id=self.model_id, system_prompt=self.system)
            self.session_id = session.id
        events = await self.service.start_turn(
            self.caller, self.session_id, content, model_id=self.model_id, options=self.options, surface="terminal"
        )
        try:
            async for item in events:
                if isinstance(item, ChatChunk) and item.text:
                    sys.stdout.write(item.text)
                    sys.stdout.flush()
                elif isinstance(item, TurnEnded):
                    sys.stdout.write("\n")
                    if item.message.status == "failed":
                        self.say(f"error: {item.message.error}")
                    elif item.message.model_id != self.model_id:  # a fallback answered
                        self.say(f"(answered by {item.message.model_id}: {self.model_id} did not answer)")
        finally:
            await events.aclose()  # Ctrl+C mid-answer: stored as cancelled with its text


def chat(
    config: ConfigOption = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model id (default: settings).")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt for new sessions.")] = None,
    temperature: Annotated[float | None, typer.Option(min=0, max=2)] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1)] = None,
    user: Annotated[
        str, typer.Option("--user", "-u", help="Chat as this user of the user store: their sessions and groups.")
    ] = ANONYMOUS_USER,
) -> None:
    """Chat in the terminal with streamed answers. Type /help for commands."""
    settings = settings_or_exit(config)
    from genai_chatbot.chat.service import build_chat_service
    from genai_chatbot.governance.build import build_governor

    caller = caller_named(settings, user)
    # A named user's groups limit their models here as on the server, even where the server needs no check.
    governor = None if caller.is_admin else build_governor(settings, model_access=True)
    service = build_chat_service(settings, governor)
    options = GenerationOptions(temperature=temperature, max_tokens=max_tokens)
    with asyncio.Runner() as runner:
        terminal = TerminalChat(service, model or settings.default_model, options, system, caller)
        terminal.say(f"genai-chatbot chat with {terminal.model_id}. /help for commands, /exit to leave.")
        try:
            _loop(runner, terminal)
        finally:
            runner.run(service.aclose())


def _loop(runner: asyncio.Runner, terminal: TerminalChat) -> None:
    while True:
        try:
            line = input("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            terminal.say("")
            return
        if not line:
            continue
        try:
            if line.startswith("/"):
                if not runner.run(terminal.command(line)):
                    return
            else:
                runner.run(terminal.send(line))
        except KeyboardInterrupt:
            terminal.say("\n[stopped]")
        except SessionNotFoundError:  # deleted meanwhile (from the page, say): say how to go on here
            terminal.session_id = None
            terminal.say("error: this session no longer exists; /sessions lists yours, /new starts another.")
        except ModelNotAllowedError as exc:  # its message points API callers to GET /v1/models
            terminal.say(f"error: Your groups do not allow model {exc.model_id!r}; /models lists those you may use.")
        except (ModelError, TurnInProgressError, GovernanceError) as exc:
            terminal.say(f"error: {exc.message}")
