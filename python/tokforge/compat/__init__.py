"""Drop-in shims for other tokenizer libraries' entry points."""
