"""Models: embedders, the OpenAI-compatible chat client, model fetching and serving, the pair verifier.

Used by the stages; knows nothing of them.
"""
