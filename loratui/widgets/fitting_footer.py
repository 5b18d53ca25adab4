"""A footer that shows the keys it has room for, each whole, in the order the bindings come (the focused
widget's, then the screen's, which lists its most used first), and none after the first that does not fit:
a narrow terminal loses the least used keys, never half a key. The palette (ctrl+p) lists every key."""

from textual.widgets import Footer


class FittingFooter(Footer):
    async def recompose(self) -> None:
        await super().recompose()
        self.fit()

    def on_resize(self) -> None:
        self.fit()

    def fit(self) -> None:
        keys = list(self.query("FooterKey"))
        docked = [key for key in keys if key.has_class("-command-palette")]
        room = self.size.width - sum(self._width(key) for key in docked)
        for key in keys:
            if key in docked:
                continue
            width = self._width(key)
            key.display = width <= room
            room = room - width if key.display else -1  # the keys after one left out are left out too

    def _width(self, key) -> int:
        return key.get_content_width(self.size, self.app.size) + key.styles.gutter.width + key.styles.margin.width
