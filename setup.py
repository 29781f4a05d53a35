"""Packaging detail pyproject.toml cannot say: top-level files that ship inside the package.

`migrations/` stays at the top of the repository (where Alembic and developers expect it) and is
mapped to `bot/migrations` in the wheel, so `plantbot db upgrade` works from a non-editable install;
`config.example.toml` is copied to `bot/config.example.toml`, which `plantbot init` writes configs from.
"""

from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildWithExample(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads it from the checkout (cli/init.py)
            return
        self.copy_file("config.example.toml", str(Path(self.build_lib) / "bot" / "config.example.toml"))


setup(
    packages=[*find_packages(include=["bot*"]), "bot.migrations", "bot.migrations.versions"],
    package_dir={"bot.migrations": "migrations"},
    cmdclass={"build_py": BuildWithExample},
)
