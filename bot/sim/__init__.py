"""The iNaturalist simulator (a real HTTP server on loopback) and the synthetic plant world."""
