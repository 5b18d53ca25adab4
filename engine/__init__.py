"""loratui's engine: training and adapter operations. Never imports loratui or textual."""
