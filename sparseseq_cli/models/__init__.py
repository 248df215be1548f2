"""The task models (language model, tagger) built from the sparse layers."""
