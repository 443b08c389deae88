"""The token vault: AES-256-GCM with every ciphertext bound to its row, and a keyring for rotation.

Format of a sealed token: ``0x01 | 96-bit random nonce | ciphertext+tag``. The associated data is
``filmroll/v1/tokens/<account id>/<key id>``, so a ciphertext copied into another account's row, or relabelled with
another key id, fails authentication instead of decrypting to the wrong account's token.

Keys are 32 random bytes, written as URL-safe base64. A key's id is a fingerprint (HMAC of a fixed label), so it can
be stored next to each row and checked at start-up without revealing the key: the first key of the keyring encrypts,
every key decrypts, and a row whose key id is not in the keyring stops start-up with a clear message instead of
letting filmroll write rows nobody can read.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from filmroll.errors import ConfigError, KeyMissingError, TokenIntegrityError
from filmroll.secret import Secret

KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT_VERSION = b"\x01"


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def key_id(key: bytes) -> str:
    return hmac.new(key, b"filmroll vault key id", hashlib.sha256).hexdigest()[:16]


def _decode_key(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ConfigError("a vault key is not valid base64; generate one with `filmroll keys generate`") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"a vault key must be {KEY_BYTES} bytes (got {len(key)}); "
                          "generate one with `filmroll keys generate`")
    return key


def parse_keys(text: str) -> list[bytes]:
    """Keys separated by commas or new lines; ``#`` starts a comment."""
    keys = []
    for line in text.splitlines():
        for item in line.split("#", 1)[0].split(","):
            if item.strip():
                keys.append(_decode_key(item))
    return keys


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    key_id: str


class Keyring:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ConfigError("no vault key: run `filmroll keys generate` (writes filmroll.keys) or set "
                              "FILMROLL_VAULT__KEYS")
        self._keys = {key_id(k): k for k in keys}
        if len(self._keys) != len(keys):
            raise ConfigError("the keyring lists the same key twice")
        self.primary_id = key_id(keys[0])

    @property
    def ids(self) -> list[str]:
        return list(self._keys)

    def key(self, ident: str) -> bytes:
        try:
            return self._keys[ident]
        except KeyError:
            raise KeyMissingError(f"a stored token is encrypted with key {ident}, which is not in the keyring; "
                                  "add that key back (FILMROLL_VAULT__KEYS or the keys file)") from None

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (the sign-in form's CSRF tokens, the throttle's username hashes), derived
        from the primary key with HKDF: a server secret held where the vault keys are, and never the vault key
        itself. Rotating the primary key changes it, which costs only short-lived things (an open sign-in form,
        fifteen minutes of throttle counts)."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                    info=f"filmroll/v1/{purpose}".encode()).derive(self._keys[self.primary_id])

    def require(self, used_ids: Iterable[str]) -> None:
        """Stop start-up if stored rows use keys we do not have."""
        missing = sorted(set(used_ids) - set(self._keys))
        if missing:
            raise KeyMissingError(
                f"stored tokens are encrypted with key(s) {', '.join(missing)}, missing from the keyring "
                f"(which has {', '.join(self._keys)}). Restore the key instead of generating a new one: a new key "
                "cannot read existing tokens.")


def load_keyring(keys: Secret | str, keys_file: Path, *, stored: Mapping[str, int] | None = None) -> Keyring:
    """Keys from the setting if given, else from the keys file (which must not be readable by others). ``stored``
    (key id → tokens encrypted with it) turns a missing key file into advice to restore it, not to make a new one."""
    text = keys.reveal() if isinstance(keys, Secret) else keys
    if text.strip():
        return Keyring(parse_keys(text))
    if not keys_file.exists():
        if stored:
            raise KeyMissingError(
                f"no vault key: {keys_file} does not exist and FILMROLL_VAULT__KEYS is empty, but the database holds "
                f"{sum(stored.values())} token(s) encrypted with key(s) {', '.join(sorted(stored))}. Restore "
                f"{keys_file.name} from your backup; generating a new key cannot read the stored tokens")
        raise ConfigError(f"no vault key: {keys_file} does not exist and FILMROLL_VAULT__KEYS is empty. "
                          "Run `filmroll keys generate` once.")
    mode = keys_file.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{keys_file} is readable by other users; run `chmod 600 {keys_file}`")
    try:
        content = keys_file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{keys_file} is not a filmroll keys file (not UTF-8 text); restore it from your "
                          "backup") from None
    return Keyring(parse_keys(content))


def write_keys_file(path: Path, keys: Sequence[str]) -> None:
    """Replace the keys file atomically, created 0600 (never briefly world-readable)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("# filmroll vault keys: the first one encrypts, all of them decrypt. Keep a backup.\n")
        handle.write("\n".join(keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class Vault:
    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    @staticmethod
    def _associated_data(account_id: int, ident: str) -> bytes:
        return f"filmroll/v1/tokens/{account_id}/{ident}".encode()

    def seal(self, token: Secret, account_id: int) -> Sealed:
        ident = self.keyring.primary_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        body = AESGCM(self.keyring.key(ident)).encrypt(nonce, token.reveal().encode(),
                                                        self._associated_data(account_id, ident))
        return Sealed(FORMAT_VERSION + nonce + body, ident)

    def open(self, ciphertext: bytes, ident: str, account_id: int) -> Secret:
        key = self.keyring.key(ident)
        if len(ciphertext) < 1 + NONCE_BYTES + 16 or ciphertext[:1] != FORMAT_VERSION:
            raise TokenIntegrityError(f"the stored token of account {account_id} is not in a format filmroll wrote")
        nonce, body = ciphertext[1:1 + NONCE_BYTES], ciphertext[1 + NONCE_BYTES:]
        try:
            plain = AESGCM(key).decrypt(nonce, body, self._associated_data(account_id, ident))
        except InvalidTag:
            raise TokenIntegrityError(
                f"the stored token of account {account_id} failed its integrity check: it was altered or copied "
                "from another account. Reconnect the account.") from None
        return Secret(plain.decode())

    def needs_reseal(self, ident: str) -> bool:
        return ident != self.keyring.primary_id
