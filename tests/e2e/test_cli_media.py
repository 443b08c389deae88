"""`filmroll mirror`, `filmroll media`, `filmroll storage usage|gc` as a person runs them: real processes against
the sandbox's CDN, files in a directory beside the database, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import zipfile

import pytest

from tests.seeding import index_with

pytestmark = pytest.mark.slow


def test_mirror_an_account_look_at_its_posts_and_measure_and_collect_the_storage(cli, sandbox, tmp_path):
    index = index_with(sandbox, 5, 12)
    cli.env.update({"FILMROLL_MIRROR__CDN_HOSTS": f'["{sandbox.base_url}"]', "FILMROLL_MIRROR__PROCESSES": "1",
                    "FILMROLL_MIRROR__EAGER_POSTS": "2"})
    cli("connect", "--token", stdin=sandbox.control.mint_token(index, kind="long")["access_token"] + "\n")
    username, posts = sandbox.control.account(index)["username"], sandbox.control.account(index)["media_count"]
    cli("sync", username)
    before = json.loads(cli("media", username, "--json").stdout)
    assert len(before) == posts and {p["mirror_state"] for p in before} == {"pending"}

    out = cli("mirror", f"@{username}").stdout
    assert f"{posts} post(s) mirrored" in out and "every post is in storage" in out, out
    listing = json.loads(cli("media", username, "--json").stdout)
    assert [p["ig_media_id"] for p in listing] == [p["ig_media_id"] for p in before]  # newest first, every one
    assert all(p["mirror_state"] == "mirrored" and p["files"] >= 1 and p["bytes"] > 0 for p in listing)
    assert sum(1 for p in listing if p["variants"]) == 2  # the two newest got their variants at once
    assert all(p["color"] and len(p["color"].split(",")) == 3 for p in listing)
    # The numbers people ask for: Instagram's counts, and the original's real size (not its smallest variant's).
    for post in listing:
        truth = sandbox.control.media(post["ig_media_id"])
        assert (post["like_count"], post["comments_count"]) == (truth["like_count"], truth["comments_count"])
        assert (post["width"], post["height"]) in {(1080, 1350), (1080, 1080), (1440, 1800), (1080, 566),
                                                   (1080, 1920)}, post
    accounts = json.loads(cli("accounts", "--json").stdout)
    profile = sandbox.control.account(index)
    assert [(a["followers_count"], a["follows_count"], a["media_count"]) for a in accounts] == [
        (profile["followers_count"], profile["follows_count"], profile["media_count"])]
    assert f"{profile['followers_count']:,}" in cli("accounts").stdout
    table = cli("media", username).stdout
    assert f"{posts} posts, {posts} mirrored" in table

    usage = json.loads(cli("storage", "usage", "--json").stdout)
    assert usage["storage"].endswith("filmroll-media")  # the default: a directory beside the database
    (row,) = usage["accounts"]
    stored = [p for p in (tmp_path / "filmroll-media").rglob("*") if p.is_file() and ".incoming" not in p.parts]
    assert sum(row["files"].values()) == len(stored)
    assert sum(row["bytes"].values()) == sum(p.stat().st_size for p in stored)
    for path in stored:  # an original's name is its content's hash
        if len(path.stem) == 64:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem

    # The owner's archive: every post, its original files byte for byte, the profile picture; no token.
    out = cli("export", f"@{username}", "--to", str(tmp_path / "archive.zip")).stdout
    assert f"{posts} posts and" in out and "archive.zip" in out
    with zipfile.ZipFile(tmp_path / "archive.zip") as archive:
        names = set(archive.namelist())
        exported = json.loads(archive.read("posts.json"))
        assert [p["id"] for p in exported] == [p["ig_media_id"] for p in listing]
        files = [f for p in exported for f in p["files"] + [f for c in p["children"] for f in c["files"]]]
        assert files and all(f["path"] in names for f in files)
        assert all(hashlib.sha256(archive.read(f["path"])).hexdigest() == f["sha256"] for f in files)
        assert json.loads(archive.read("profile.json"))["username"] == username
        assert {"README.txt", "insights.json"} <= names
        assert not any(b"IGAA" in archive.read(name) for name in names)

    # Nothing is unreferenced yet: gc keeps everything; once disconnected (and retention 0), it all goes.
    assert "0 file(s) removed" in cli("storage", "gc").stdout
    cli("disconnect", username)
    cli.env["FILMROLL_STORAGE__RETENTION_DAYS"] = "0"
    out = cli("storage", "gc").stdout
    assert f"{len(stored)} file(s) removed; 0 kept" in out, out
    assert [p for p in (tmp_path / "filmroll-media").rglob("*") if p.is_file()] == []

    refused = cli("mirror", "@nobody", check=False)
    assert refused.returncode == 3 and "no connected account" in refused.stderr


def test_storage_that_does_not_work_is_named_by_doctor_and_stops_mirror_with_its_own_exit_code(cli, sandbox):
    """A missing bucket once made `mirror` exit 4 (the code for "Instagram refused") with "FileNotFoundError", and
    `doctor` checked no storage at all."""
    from tests.s3server import ACCESS_KEY, SECRET_KEY, s3_server

    index = index_with(sandbox, 3, 8)
    cli("connect", "--token", stdin=sandbox.control.mint_token(index, kind="long")["access_token"] + "\n")
    cli("sync", "1")
    with s3_server() as server:
        cli.env.update({"FILMROLL_STORAGE__URL": "s3://not-made-yet/media", "FILMROLL_STORAGE__S3_ENDPOINT":
                        server.endpoint, "FILMROLL_STORAGE__S3_ACCESS_KEY_ID": ACCESS_KEY,
                        "FILMROLL_STORAGE__S3_SECRET_ACCESS_KEY": SECRET_KEY,
                        "FILMROLL_MIRROR__CDN_HOSTS": f'["{sandbox.base_url}"]', "FILMROLL_MIRROR__PROCESSES": "1"})
        doctor = json.loads(cli("doctor", "--offline", "--json", check=False).stdout)
        (check,) = [c for c in doctor["checks"] if c["name"] == "media storage writable"]
        assert not check["ok"] and "the bucket does not exist" in check["detail"], check
        calls = len(sandbox.control.calls(limit=100_000))
        refused = cli("mirror", "1", check=False)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 12 and len(lines) == 1 and "the bucket does not exist" in lines[0], refused
        assert SECRET_KEY not in refused.stderr + json.dumps(doctor)
        assert len(sandbox.control.calls(limit=100_000)) == calls  # nothing fetched for a storage that cannot hold it
        server.create_bucket("not-made-yet")
        doctor = json.loads(cli("doctor", "--offline", "--json", check=False).stdout)
        assert [c["ok"] for c in doctor["checks"] if c["name"] == "media storage writable"] == [True]
        assert "every post is in storage" in cli("mirror", "1").stdout
        assert all(not key.startswith("media/.filmroll-probe/") for key in server.keys("not-made-yet"))
