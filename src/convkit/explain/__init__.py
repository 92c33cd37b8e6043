"""Explanations and pictures for learners."""
