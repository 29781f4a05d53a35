"""PlantBot: model-assisted plant identification suggestions for iNaturalist communities."""

__version__ = "0.1.0"
