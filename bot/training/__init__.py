"""Making and judging PlantBot's own models: datasets (from a folder or the platform), label
resolution, training and evaluation.  Imports only downward: platforms, photos, classifier, decide."""
