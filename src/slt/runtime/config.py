"""One typed settings object from defaults, an optional TOML file and environment variables.

Secrets stay in ``SecretStr``; ``masked_settings`` and ``secret_values`` are the only ways out,
for display and for log redaction. Validation errors never carry the values that failed.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from slt.errors import ConfigError

Source = Literal["default", "file", "env"]

MASK = "***"
CONFIG_PATH_ENV = "SLT_CONFIG"
_URL_SECRET_FIELDS = ("database_url", "redis_url")
# Query parameters that carry credentials in database and cache URLs.
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pass", "sslpassword", "secret", "token"})


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _number_to_str(value: object) -> object:
    # Telegram chat ids are numbers; a TOML file may write them unquoted.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


# Binance's USDT-M endpoints (reference §2: SDK constants).
TESTNET_REST = "https://testnet.binancefuture.com"
TESTNET_WS = "wss://fstream.binancefuture.com"
BINANCE_WS = "wss://fstream.binance.com"


class Settings(BaseSettings):
    """The effective configuration. Build it with ``load_settings``; direct construction
    takes only its keyword arguments (handy in tests) and reads no file or environment."""

    model_config = SettingsConfigDict(
        env_prefix="SLT_",
        case_sensitive=False,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
        populate_by_name=True,
    )

    database_url: SecretStr | None = Field(default=None, validation_alias="DATABASE_URL")
    redis_url: SecretStr | None = Field(default=None, validation_alias="REDIS_URL")
    binance_api_key: SecretStr | None = Field(default=None, validation_alias="BINANCE_API_KEY")
    binance_api_secret: SecretStr | None = Field(
        default=None, validation_alias="BINANCE_API_SECRET"
    )
    discord_webhook_url: SecretStr | None = Field(
        default=None, validation_alias="DISCORD_WEBHOOK_URL"
    )
    telegram_token: SecretStr | None = Field(default=None, validation_alias="TELEGRAM_TOKEN")
    telegram_chat_id: Annotated[str | None, BeforeValidator(_number_to_str)] = Field(
        default=None, validation_alias="TELEGRAM_CHAT_ID"
    )
    disable_model_training: bool = Field(default=False, validation_alias="DISABLE_MODEL_TRAINING")
    disable_websocket: bool = Field(default=False, validation_alias="DISABLE_WEBSOCKET")
    disable_rest_fallback: bool = Field(default=False, validation_alias="DISABLE_REST_FALLBACK")
    relaxed_signal_mode: bool = Field(default=False, validation_alias="RELAXED_SIGNAL_MODE")
    binance_testnet: bool = Field(default=False, validation_alias="BINANCE_TESTNET")
    binance_futures_rest_url: str | None = Field(
        default=None, validation_alias="BINANCE_FUTURES_REST_URL"
    )
    binance_futures_ws_url: str | None = Field(
        default=None, validation_alias="BINANCE_FUTURES_WS_URL"
    )
    rate_limit_requests: int = Field(default=1200, gt=0, validation_alias="RATE_LIMIT_REQUESTS")
    rate_limit_period: float = Field(
        default=60.0, gt=0, allow_inf_nan=False, validation_alias="RATE_LIMIT_PERIOD"
    )

    data_dir: Path = Path("./user_data")
    log_mode: Annotated[Literal["auto", "console", "json", "business"], BeforeValidator(_lower)] = (
        "auto"
    )
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = (
        "INFO"
    )
    binance_futures_url: str = "https://fapi.binance.com"
    binance_spot_url: str = "https://api.binance.com"
    mode: Annotated[Literal["backtest", "paper", "live"], BeforeValidator(_lower)] = "backtest"
    db_auto_migrate: bool = False
    retrain_min_trades: int = Field(default=50, ge=1)
    retrain_interval_minutes: float = Field(default=60.0, ge=0, allow_inf_nan=False)

    _sources: dict[str, Source] = PrivateAttr(default_factory=dict)
    _config_file: Path | None = PrivateAttr(default=None)

    @field_validator("binance_futures_url", "binance_spot_url")
    @classmethod
    def _http_base_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("binance_futures_rest_url")
    @classmethod
    def _rest_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @field_validator("binance_futures_ws_url")
    @classmethod
    def _ws_base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss://")
        return value.rstrip("/") if value else value

    def futures_endpoints(self) -> tuple[str, str]:
        """(REST, WebSocket) base URLs of USDT-M futures for trading: the explicit
        ``BINANCE_FUTURES_REST_URL`` / ``_WS_URL`` (a local exchange), else Binance's testnet
        with ``BINANCE_TESTNET``, else Binance. The adapter appends ``/fapi/...``,
        ``/market/...``, ``/private/...``."""
        rest, ws = (TESTNET_REST, TESTNET_WS) if self.binance_testnet else (
            self.binance_futures_url, BINANCE_WS)  # fmt: skip
        return self.binance_futures_rest_url or rest, self.binance_futures_ws_url or ws

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only explicit arguments; ``load_settings`` supplies the file and environment."""
        return (init_settings,)


SECRET_FIELDS = tuple(
    name for name, field in Settings.model_fields.items() if SecretStr in get_args(field.annotation)
)


def env_name(field: str) -> str:
    """The environment variable for a field; also the name errors and ``config show`` use."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else f"SLT_{field.upper()}"


def settings_sources(settings: Settings) -> dict[str, Source]:
    """Where each field's value came from: ``default``, ``file`` or ``env``."""
    return {name: settings._sources.get(name, "default") for name in Settings.model_fields}


def config_file(settings: Settings) -> Path | None:
    """The TOML file these settings were loaded from, if any."""
    return settings._config_file


class _MappingEnvSource(EnvSettingsSource):
    """The environment source reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ  # read by _load_env_vars, which the base __init__ calls
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {key.lower(): value for key, value in self._environ.items() if value != ""}


def load_settings(
    config_path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults < TOML file (``config_path`` or ``$SLT_CONFIG``) < environment.

    Raises ConfigError listing every bad field (by its environment name) without its value.
    """
    env = os.environ if environ is None else environ
    if config_path is None and env.get(CONFIG_PATH_ENV):
        config_path = Path(env[CONFIG_PATH_ENV])

    problems: list[str] = []
    file_source: TomlConfigSettingsSource | None = None
    if config_path is not None:
        file_source, problem = _open_file_source(config_path)
        if problem:
            problems.append(f"config file {config_path}: {problem}")
    env_source = _MappingEnvSource(Settings, env)
    file_data: dict[str, Any] = dict(file_source.toml_data) if file_source else {}
    sources = _field_sources(file_data, env_source.env_vars)
    ordered: tuple[PydanticBaseSettingsSource, ...] = (
        (env_source, file_source) if file_source else (env_source,)
    )

    class _Layered(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return ordered  # earlier wins: environment over file over defaults

    try:
        layered = _Layered()
    except ValidationError as exc:
        problems.extend(_describe(exc, sources, config_path))
        layered = None
    if problems or layered is None:
        raw_secrets = _raw_secret_candidates(file_data, env_source.env_vars)
        raise ConfigError(_redact(_problem_report(problems), raw_secrets))

    # Hand back a plain Settings (picklable, ordinary type), not the per-call subclass.
    values = {name: getattr(layered, name) for name in Settings.model_fields}
    settings = Settings.model_construct(_fields_set=set(layered.model_fields_set), **values)
    settings._sources = {name: src for name, src in sources.items() if src != "default"}
    settings._config_file = config_path
    return settings


def _open_file_source(path: Path) -> tuple[TomlConfigSettingsSource | None, str | None]:
    if not path.exists():
        return None, "not found"
    if not path.is_file():
        return None, "is not a file"
    try:
        return TomlConfigSettingsSource(Settings, toml_file=path), None
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or type(exc).__name__})"
    except tomllib.TOMLDecodeError as exc:
        return None, f"invalid TOML ({exc})"
    except UnicodeDecodeError:
        return None, "invalid TOML (not UTF-8 text)"


def _field_sources(
    file_data: Mapping[str, Any], env_vars: Mapping[str, str | None]
) -> dict[str, Source]:
    def source(name: str) -> Source:
        if env_vars.get(env_name(name).lower()) is not None:
            return "env"
        return "file" if name in file_data or env_name(name) in file_data else "default"

    return {name: source(name) for name in Settings.model_fields}


def _describe(
    exc: ValidationError, sources: Mapping[str, Source], config_path: Path | None
) -> list[str]:
    """One line per error: name, source and pydantic's reason, never the input value."""
    by_key = {key: name for name in Settings.model_fields for key in (name, env_name(name))}
    lines = []
    for error in exc.errors(include_url=False, include_context=False, include_input=False):
        key = str(error["loc"][0]) if error["loc"] else "?"
        field = by_key.get(key)
        if error["type"] == "extra_forbidden" or field is None:
            lines.append(f"{key} (file {config_path}): unknown setting")
            continue
        where = sources.get(field, "default")
        origin = f"file {config_path}" if where == "file" else where
        reason = error["msg"].removeprefix("Value error, ")
        lines.append(f"{env_name(field)} ({origin}): {reason}")
    return lines


def _problem_report(problems: list[str]) -> str:
    noun = "problem" if len(problems) == 1 else "problems"
    return "\n".join(
        [f"invalid configuration ({len(problems)} {noun}):", *(f"  {p}" for p in problems)]
    )


def _raw_secret_candidates(
    file_data: Mapping[str, Any], env_vars: Mapping[str, str | None]
) -> list[str]:
    """Raw secret inputs (valid or not) so an error report can be scrubbed of them."""
    raw: list[str] = []
    for name in SECRET_FIELDS:
        for value in (env_vars.get(env_name(name).lower()), file_data.get(name)):
            if isinstance(value, str) and value:
                raw.extend([value, *_url_credentials(value)])
    return raw


def _redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def secret_values(settings: Settings) -> list[str]:
    """Every configured secret as raw text, for redaction; longest first."""
    found: set[str] = set()
    for name in SECRET_FIELDS:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            raw = value.get_secret_value()
            found.update([raw, *_url_credentials(raw)])
    return sorted((value for value in found if value), key=len, reverse=True)


def _url_credentials(url: str) -> list[str]:
    """Password (raw and percent-decoded), credential query values and webhook tokens."""
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL (an API key, say): nothing inside to extract
        return []
    userinfo, at, _ = parts.netloc.rpartition("@")
    password = userinfo.partition(":")[2] if at else ""
    found = [password, unquote(password)]
    found += [v for k, v in parse_qsl(parts.query) if k.lower() in _SECRET_QUERY_KEYS]
    if parts.scheme in ("http", "https") and parts.path.count("/") > 2:
        found.append(parts.path.rsplit("/", 1)[1])  # webhook token: the last path segment
    return [value for value in found if value]


def mask_url(url: str) -> str:
    """The URL with only its password (and credential query values) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at and ":" in userinfo:
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{hostport}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(key.lower() in _SECRET_QUERY_KEYS for key, _ in pairs):
        masked = [(k, MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs]
        query = urlencode(masked, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def masked_settings(settings: Settings) -> dict[str, object]:
    """Every field as JSON-friendly data with secrets masked; URLs keep all but the password."""

    def shown(name: str, value: object) -> object:
        if isinstance(value, SecretStr):
            return mask_url(value.get_secret_value()) if name in _URL_SECRET_FIELDS else MASK
        return str(value) if isinstance(value, Path) else value

    return {name: shown(name, getattr(settings, name)) for name in Settings.model_fields}
