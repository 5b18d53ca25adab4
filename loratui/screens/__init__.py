"""One module per dashboard screen, its .tcss beside it."""
