"""An API key and its secret in a file of their own, readable by its owner only.

Why a file: the secret is shown once, in the answer to ``create_account``, and the gateway can
never show it again (it keeps none: secrets are derived from its master key). A person at a
terminal, or a bot started again, needs it kept somewhere; a file of mode 0600 under the user's
config directory is where command-line tools keep such things. It is written whole to a
temporary file first and renamed over the old one, so a crash never leaves half a secret.
"""

import os
from pathlib import Path

import msgspec


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """What logging in needs, and where and whose it is."""

    api_key: str
    api_secret: str
    account: int | None = None
    url: str | None = None
    """The gateway the account was made on: each ``exchange up`` is a new exchange, where an
    older run's key means nothing."""

    def save(self, path: Path, *, overwrite: bool = False) -> None:
        """Write to ``path`` with mode 0600 (its directory made 0700 if new);
        ``FileExistsError`` if there is a file already and not ``overwrite``."""
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists (it may hold the only copy of a secret)")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(msgspec.json.format(msgspec.json.encode(self)) + b"\n")
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> "Credentials":
        """Read ``path``; ``FileNotFoundError`` if there is none, ``ValueError`` if it is not
        credentials."""
        data = path.read_bytes()
        try:
            return msgspec.json.decode(data, type=cls)
        except msgspec.DecodeError as error:
            raise ValueError(f"{path} holds no credentials: {error}") from None


def default_credentials_path() -> Path:
    """``$XDG_CONFIG_HOME/exchange/credentials.json``, ``~/.config/…`` without it."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "exchange" / "credentials.json"
