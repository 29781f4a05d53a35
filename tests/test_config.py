"""Config loading: defaults, presets, and one-line errors naming the file and key."""

from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from bot.config import Config, ConfigError, Secrets, check_model_path, config_from_dict, load_config

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_with_documented_defaults() -> None:
    cfg = load_config(ROOT / "config.example.toml")
    assert cfg.decision.cutoff == pytest.approx(0.30)
    assert cfg.posting.mode == "review"
    assert cfg.photos.size == "medium"
    assert cfg.decision.fallback_ranks == ["genus", "family"]


def test_example_config_mentions_every_key() -> None:
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    for section in fields(Config):
        if section.name == "source":
            continue
        assert f"[{section.name}]" in text
        obj = getattr(Config(), section.name)
        assert is_dataclass(obj)
        for key in fields(obj):
            assert re.search(rf"^#?\s*{key.name}\s*=", text, re.M), f"[{section.name}] {key.name} undocumented"


def test_a_habit_annotation_needs_both_ids(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[dataset]\nhabit_field = "Habit"\nhabit_annotation_attribute_id = 12\n'
                                      'habit_annotation_value_id = 13\n'))
    assert (cfg.dataset.habit_field, cfg.dataset.habit_annotation_attribute_id) == ("Habit", 12)
    with pytest.raises(ConfigError, match="give both or neither"):
        load_config(write(tmp_path, '[dataset]\nhabit_annotation_attribute_id = 12\n'))
    with pytest.raises(ConfigError, match="ids are >= 1"):
        load_config(write(tmp_path, '[dataset]\nhabit_annotation_attribute_id = 0\nhabit_annotation_value_id = 3\n'))


def test_relative_paths_follow_the_config_file(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[store]\ndatabase = "db/x.sqlite3"\n[model]\npath = "bundle"\n'))
    assert cfg.database_path == tmp_path.resolve() / "db" / "x.sqlite3"
    assert cfg.model_path == tmp_path.resolve() / "bundle"


def test_natusfera_preset_fills_platform_and_spanish(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[platform]\npreset = "natusfera"\n'))
    assert cfg.platform.site_id == 13
    assert cfg.posting.language == "es"
    assert "static.inaturalist.org" in cfg.allowed_photo_hosts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[platform]\nflavour = 'x'\n", r"\[platform\] flavour: unknown key"),
        ("[nonsense]\na = 1\n", r"unknown section \[nonsense\]"),
        ("[decision]\ncutoff = 'high'\n", r"\[decision\] cutoff: expected a number"),
        ("[model]\nbatch_size = 1.5\n", r"\[model\] batch_size: expected an integer"),
        ("[decision]\ncutoff = 1.5\n", r"\[decision\] cutoff"),
        ("[posting]\nmode = 'yolo'\n", r"\[posting\] mode"),
        ("[decision]\nskip_captive = 'yes'\n", r"\[decision\] skip_captive: expected true or false"),
        ("[platform\n", r"not valid TOML"),
        ("[platform]\npreset = 'nowhere'\n", r"\[platform\] preset: unknown preset"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    assert re.search(expected, message)


def test_missing_model_names_the_key(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, '[model]\npath = "nowhere"\n'))
    with pytest.raises(ConfigError, match=r"\[model\] path: .*nowhere does not exist"):
        check_model_path(cfg)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config("/nonexistent/plantbot.toml")


def test_secrets_come_from_the_environment_and_never_show() -> None:
    secrets = Secrets.from_env({"PLANTBOT_API_TOKEN": "tok-123", "INAT_PASSWORD": "pw-456"})
    assert secrets.api_token == "tok-123"
    assert "tok-123" not in repr(secrets) and "pw-456" not in repr(secrets)


def test_defaults_without_a_file() -> None:
    cfg = config_from_dict({})
    assert cfg.platform.flavor == "inat-v1"
    assert cfg.store.database == "plantbot.sqlite3"
