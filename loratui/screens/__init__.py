"""One module per dashboard screen, its .tcss beside it. The main screens are listed here, where
`loratui --screen` reads them without importing Textual."""

# Main screens by mode name: (module, class, title, what it shows), on keys 1-4 in this order. Each is
# imported when first shown.
MAIN_SCREENS = {
    "runs": ("loratui.screens.runs", "RunsScreen", "Runs", "every run in the library, live"),
    "detail": ("loratui.screens.run_detail", "RunDetailScreen", "Run", "charts, samples and log of a run"),
    "browse": ("loratui.screens.browse", "BrowseScreen", "Browse", "models and datasets: built-in, cache, local, Hub"),
    "library": ("loratui.screens.library", "LibraryScreen", "Library", "the adapters in the library"),
}
MAIN_KEYS = tuple(MAIN_SCREENS)
