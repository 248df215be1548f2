"""Data: vocabulary orders, token and CoNLL files, the built-in synthetic corpus, and getdata."""
