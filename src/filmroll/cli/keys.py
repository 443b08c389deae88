"""``filmroll keys``: the vault's keys. A key file is written 0600; keys never appear on screen."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from filmroll.cli.common import ExitStatus, console, database, fail, run, settings
from filmroll.secret import Secret
from filmroll.vault import Vault, generate_key, key_id, load_keyring, parse_keys, write_keys_file

app = typer.Typer(help="Vault keys: generate, rotate, list, retire.", no_args_is_help=True)


def _file() -> tuple[Path, bool]:
    current = settings()
    return current.vault.keys_file, bool(current.vault.keys.get_secret_value().strip())


async def _stored_tokens() -> dict[str, int]:
    from filmroll.runtime import stored_key_ids

    return await stored_key_ids(settings().database_url)


@app.command("generate")
def generate(force: bool = typer.Option(False, "--force", help="Make a new key even though the database holds "
                                                              "tokens it cannot read")) -> None:
    """Create the keys file with a first key (refuses to overwrite one: that would lose every stored token)."""
    path, from_env = _file()
    if from_env:
        fail("FILMROLL_VAULT__KEYS is set; keys come from there, not from a file", ExitStatus.CONFIG)
    if path.exists():
        fail(f"{path} already exists; use `filmroll keys rotate` to add a new key", ExitStatus.CONFIG)
    stored = run(_stored_tokens())
    if stored and not force:
        fail(f"the database holds {sum(stored.values())} token(s) encrypted with key(s) {', '.join(sorted(stored))}, "
             f"which a new key cannot read. Restore {path.name} from your backup instead (or reconnect every account "
             "after `filmroll keys generate --force`)", ExitStatus.VAULT)
    key = generate_key()
    write_keys_file(path, [key])
    console.print(f"wrote {path} (mode 600) with key {key_id(parse_keys(key)[0])}. Back it up: without it the "
                  "stored tokens cannot be read.")


async def _reencrypt() -> int:
    from filmroll.service import keys as key_service

    current = settings()
    vault = Vault(load_keyring(Secret(current.vault.keys.get_secret_value()), current.vault.keys_file))
    async with database(current) as opened:
        return await key_service.reencrypt(opened, vault, actor="cli")


@app.command("rotate")
def rotate() -> None:
    """Add a new first key to the keys file, then re-encrypt every stored token with it."""
    path, from_env = _file()
    if from_env:
        fail("keys come from FILMROLL_VAULT__KEYS: put a new key (`filmroll keys new`) first in that list, then "
             "run `filmroll keys reencrypt`", ExitStatus.CONFIG)
    if not path.exists():
        fail(f"{path} does not exist; run `filmroll keys generate` first", ExitStatus.CONFIG)
    existing = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    key = generate_key()
    write_keys_file(path, [key, *existing])
    moved = run(_reencrypt())
    console.print(f"new key {key_id(parse_keys(key)[0])} encrypts from now on; {moved} token(s) re-encrypted. "
                  "Older keys stay in the file until `filmroll keys retire`.")


@app.command("new")
def new() -> None:
    """Print a new key, for keyrings kept in FILMROLL_VAULT__KEYS (a secret manager, not a file)."""
    typer.echo(generate_key())


@app.command("reencrypt")
def reencrypt() -> None:
    """Re-encrypt every stored token with the first key of the keyring."""
    console.print(f"{run(_reencrypt())} token(s) re-encrypted")


@app.command("list")
def list_keys(as_json: bool = typer.Option(False, "--json", help="Machine-readable output")) -> None:
    """Key ids in the keyring and how many stored tokens use each."""
    current = settings()
    keyring = load_keyring(Secret(current.vault.keys.get_secret_value()), current.vault.keys_file)

    async def body() -> dict[str, int]:
        from filmroll.service import keys as key_service

        async with database(current) as opened:
            return await key_service.usage(opened)

    usage = run(body())
    roles = {**{i: "encrypts" if i == keyring.primary_id else "decrypts" for i in keyring.ids},
             **{i: "missing" for i in sorted(set(usage) - set(keyring.ids))}}
    if as_json:
        typer.echo(json.dumps([{"key_id": i, "role": role, "tokens": usage.get(i, 0)} for i, role in roles.items()],
                              indent=2))
        return
    for ident, role in roles.items():
        line = f"{ident}  {role.upper() if role == 'missing' else role}  {usage.get(ident, 0)} token(s)"
        console.print(f"[red]{line}[/red]" if role == "missing" else line)


@app.command("retire")
def retire(ident: str = typer.Argument(..., help="The key id to remove from the keys file")) -> None:
    """Remove an old key from the keys file, once no stored token uses it."""
    path, from_env = _file()
    if from_env or not path.exists():
        fail("retire works on the keys file; edit FILMROLL_VAULT__KEYS yourself", ExitStatus.CONFIG)
    keys = [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    remaining = [k for k in keys if key_id(parse_keys(k)[0]) != ident]
    if len(remaining) == len(keys):
        fail(f"no key {ident} in {path}", ExitStatus.NOT_FOUND)
    if not remaining:
        fail("that is the only key; it cannot be retired", ExitStatus.CONFIG)

    async def used() -> int:
        from filmroll.service import keys as key_service

        async with database() as opened:
            return (await key_service.usage(opened)).get(ident, 0)

    count = run(used())
    if count:
        fail(f"{count} token(s) still use key {ident}; run `filmroll keys reencrypt` first", ExitStatus.VAULT)
    write_keys_file(path, remaining)
    console.print(f"key {ident} retired")
