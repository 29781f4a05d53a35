"""Helpers shared by the tests (model bundles with known answers, ...)."""
