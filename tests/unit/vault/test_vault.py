"""The vault: round trips, integrity (every byte, every row swap), keyrings and key files."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filmroll.errors import ConfigError, KeyMissingError, TokenIntegrityError
from filmroll.secret import Secret
from filmroll.vault import Keyring, Vault, generate_key, key_id, load_keyring, parse_keys, write_keys_file


def _vault(*keys: str) -> Vault:
    return Vault(Keyring(parse_keys(",".join(keys))))


@given(token=st.text(min_size=1, max_size=300), account=st.integers(1, 10**9))
def test_round_trip(token, account):
    vault = _vault(generate_key())
    sealed = vault.seal(Secret(token), account)
    if len(token.encode()) >= 8:  # a shorter string can turn up in random bytes by chance
        assert token.encode() not in sealed.ciphertext
    assert vault.open(sealed.ciphertext, sealed.key_id, account).reveal() == token


def test_every_flipped_byte_fails_loudly_across_100_rows():
    vault = _vault(generate_key())
    failures = attempts = 0
    for account in range(1, 101):
        sealed = vault.seal(Secret(f"IGAA{account:04d}" + "x" * 140), account)
        for position in range(len(sealed.ciphertext)):
            damaged = bytearray(sealed.ciphertext)
            damaged[position] ^= 0x01
            attempts += 1
            with pytest.raises(TokenIntegrityError):
                vault.open(bytes(damaged), sealed.key_id, account)
            failures += 1
    assert failures == attempts > 15_000


def test_a_ciphertext_copied_to_another_account_fails():
    vault = _vault(generate_key())
    sealed = vault.seal(Secret("IGAA-account-one"), 1)
    with pytest.raises(TokenIntegrityError, match="altered or copied"):
        vault.open(sealed.ciphertext, sealed.key_id, 2)


def test_relabelling_the_key_id_fails():
    old, new = generate_key(), generate_key()
    vault = _vault(new, old)
    sealed = _vault(old).seal(Secret("IGAAx"), 7)
    assert vault.open(sealed.ciphertext, sealed.key_id, 7).reveal() == "IGAAx"
    with pytest.raises(TokenIntegrityError):
        vault.open(sealed.ciphertext, vault.keyring.primary_id, 7)


def test_first_key_encrypts_all_keys_decrypt():
    old, new = generate_key(), generate_key()
    sealed_old = _vault(old).seal(Secret("t-old"), 3)
    rotated = _vault(new, old)
    assert rotated.open(sealed_old.ciphertext, sealed_old.key_id, 3).reveal() == "t-old"
    assert rotated.seal(Secret("t-new"), 3).key_id == key_id(parse_keys(new)[0])
    assert rotated.needs_reseal(sealed_old.key_id)
    with pytest.raises(KeyMissingError, match="not in the keyring"):
        _vault(new).open(sealed_old.ciphertext, sealed_old.key_id, 3)


def test_nonces_never_repeat():
    vault = _vault(generate_key())
    nonces = {vault.seal(Secret("t"), 1).ciphertext[1:13] for _ in range(100_000)}
    assert len(nonces) == 100_000


def test_keyring_require_names_the_missing_key():
    key = generate_key()
    keyring = Keyring(parse_keys(key))
    keyring.require([keyring.primary_id])
    with pytest.raises(KeyMissingError, match="deadbeefdeadbeef"):
        keyring.require([keyring.primary_id, "deadbeefdeadbeef"])


@pytest.mark.parametrize("text", ["not base64 !!", "c2hvcnQ=", "", "  # only a comment"])
def test_bad_keys_are_config_errors(text):
    with pytest.raises(ConfigError):
        Keyring(parse_keys(text))


def test_keys_file_is_private_and_checked(tmp_path):
    path = tmp_path / "filmroll.keys"
    write_keys_file(path, [generate_key()])
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_keyring("", path).primary_id
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_keyring("", path)
    with pytest.raises(ConfigError, match="keys generate"):
        load_keyring("", tmp_path / "missing.keys")


def test_setting_wins_over_the_file(tmp_path):
    path = tmp_path / "filmroll.keys"
    write_keys_file(path, [generate_key()])
    other = generate_key()
    assert load_keyring(Secret(other), path).primary_id == key_id(parse_keys(other)[0])


def test_a_key_listed_twice_is_refused():
    key = generate_key()
    with pytest.raises(ConfigError, match="twice"):
        Keyring(parse_keys(f"{key},{key}"))
