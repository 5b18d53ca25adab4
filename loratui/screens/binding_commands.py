"""A screen's own keys in the command palette: `COMMANDS = {ScreenKeys}` offers each binding that has a
description as "Title: Description (key)", where the screen allows it now, so the palette and the footer
never disagree about what a screen can do."""

from functools import partial

from textual.actions import parse
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider


class ScreenKeys(Provider):
    def _commands(self) -> list[tuple[str, object, str]]:
        screen = self.screen
        title = getattr(screen, "PALETTE_TITLE", type(screen).__name__)
        commands = []
        for binding in screen.BINDINGS:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            _, name, parameters = parse(binding.action)
            if screen.check_action(name, parameters) is False:
                continue
            key = binding.key_display or binding.key.split(",")[0]
            commands.append((f"{title}: {binding.description} ({key})", partial(screen.run_action, binding.action),
                             binding.tooltip or binding.description))
        return commands

    async def discover(self) -> Hits:
        for text, command, help_text in self._commands():
            yield DiscoveryHit(text, command, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, command, help_text in self._commands():
            score = matcher.match(text)
            if score > 0:
                yield Hit(score, matcher.highlight(text), command, help=help_text)
