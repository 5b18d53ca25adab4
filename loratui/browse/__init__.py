"""Browse: where models and datasets come from (built-ins, the HF cache, local folders, the Hub),
what they hold, whether loratui can train on them, and what a run on them would cost.

Plain functions with no Textual import; heavy libraries load inside them, so screens call them from workers.
"""
