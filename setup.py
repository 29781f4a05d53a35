"""Packaging detail pyproject.toml cannot say: the top-level `migrations/` ships inside the package.

The folder stays at the top of the repository (where Alembic and developers expect it) and is mapped
to `bot/migrations` in the wheel, so `plantbot db upgrade` works from a non-editable install.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["bot*"]), "bot.migrations", "bot.migrations.versions"],
    package_dir={"bot.migrations": "migrations"},
)
