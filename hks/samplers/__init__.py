"""Suggestion algorithms that plug into hyperopt's ``fmin`` beside its own tpe/rand/anneal/atpe."""
