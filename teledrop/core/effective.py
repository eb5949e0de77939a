"""The effective configuration as TOML, secrets masked, each value with its source."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from .config import Config

#: Keys whose values are never printed.
SECRET_WORDS = ("token", "password", "secret", "credential")
SECTIONS = ("server", "limits", "auth", "storage", "metadata", "plugins")
#: A password inside a value: a URL's (``postgresql://user:PASSWORD@host/db``) or a
#: connection string's ``password=PASSWORD`` (quoted or not).
_URL_PASSWORD = re.compile(r"(://[^/@:\s]*:)[^@/\s]*(?=@)")
_PAIR_PASSWORD = re.compile(r"(\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s']+)")


@dataclass(frozen=True)
class Setting:
    key: str
    value: Any
    source: str

    @property
    def secret(self) -> bool:
        """A string or list under a secret-sounding name (``upload_tokens``); a flag or a
        number such as ``require_token`` is shown as it is."""
        name = self.key.rsplit(".", 1)[-1]
        return isinstance(self.value, (str, list)) and any(word in name for word in SECRET_WORDS)


def effective_settings(config: Config, plugin_settings: Mapping[str, Any]) -> Iterator[Setting]:
    tables: list[tuple[str, Any]] = [(name, getattr(config, name)) for name in SECTIONS]
    tables += [(f"plugins.{name}", settings) for name, settings in sorted(plugin_settings.items())
               if settings is not None]
    for prefix, settings in tables:
        for f in dataclasses.fields(settings):
            key = f"{prefix}.{f.name}"
            yield Setting(key, getattr(settings, f.name), config.sources.get(key, "default"))


def render(settings: Iterator[Setting]) -> str:
    """TOML text: one ``[table]`` per section, ``key = value  # source`` per line."""
    lines: list[str] = []
    table = None
    for setting in settings:
        prefix, name = setting.key.rsplit(".", 1)
        if prefix != table:
            lines.append(f"{'' if table is None else chr(10)}[{prefix}]")
            table = prefix
        lines.append(f"{name} = {toml_value(setting.value, setting.secret)}  # {setting.source}")
    return "\n".join(lines) + "\n"


def toml_value(value: Any, secret: bool = False) -> str:
    if secret:
        if isinstance(value, list):
            return "[" + ", ".join('"****"' for _ in value) + "]"
        return '"****"' if value else '""'
    if value is None:  # an optional value left unset (max_total_size), as a file writes it
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(hide_passwords(value), ensure_ascii=False)  # a valid TOML string
    return str(value)


def hide_passwords(text: str) -> str:
    """``text`` with every password it carries (a DSN's, a URL's) as ``****``."""
    return _PAIR_PASSWORD.sub(r"\1****", _URL_PASSWORD.sub(r"\1****", text))
