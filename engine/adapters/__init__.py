"""Adapters as files: safe loading, format conversion, inspection, Hub fetches, and the maths on them."""
