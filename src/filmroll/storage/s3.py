"""S3-compatible object storage through obstore (Rust's ``object_store``): chosen by ``bench/s3_clients.py``, where
it took a quarter of boto3's and aioboto3's client CPU per object and moved more objects per second
(``docs/benchmarks.md``). A put is one complete PUT (a single request below obstore's multipart threshold), so no
reader ever sees part of an object."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import obstore
from obstore.exceptions import PermissionDeniedError, UnauthenticatedError
from obstore.store import S3Store

from filmroll import errors
from filmroll.secret import Secret
from filmroll.storage.base import StoredObject


class S3Storage:
    def __init__(self, bucket: str, *, prefix: str = "", endpoint: str | None = None, region: str = "us-east-1",
                 access_key_id: str = "", secret_access_key: Secret = Secret("")) -> None:
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.description = f"s3://{bucket}/{self.prefix}"
        options: dict[str, object] = {"region": region, "virtual_hosted_style_request": False}
        if endpoint:
            options["endpoint"] = endpoint
        if access_key_id:
            options["access_key_id"] = access_key_id
            options["secret_access_key"] = secret_access_key.reveal()
        client_options = {"allow_http": True} if (endpoint or "").startswith("http://") else {}
        self._store = S3Store(bucket, client_options=client_options, **options)  # type: ignore[arg-type]

    def _fail(self, exc: Exception, doing: str) -> errors.StorageError:
        # obstore's messages can quote request URLs, never credentials: they are read for the cause, never repeated.
        said = str(exc)
        if isinstance(exc, FileNotFoundError) or "NoSuchBucket" in said:
            why = "the bucket does not exist: create it, or fix FILMROLL_STORAGE__URL"
        elif isinstance(exc, UnauthenticatedError) or "InvalidAccessKeyId" in said or "SignatureDoesNotMatch" in said:
            why = ("the credentials were refused: check FILMROLL_STORAGE__S3_ACCESS_KEY_ID and "
                   "FILMROLL_STORAGE__S3_SECRET_ACCESS_KEY")
        elif isinstance(exc, PermissionDeniedError | PermissionError) or "AccessDenied" in said:
            why = "permission denied: the keys may not do this in this bucket (its policy)"
        elif "error sending request" in said or "Connection refused" in said or "dns error" in said:
            why = "the service did not answer: check FILMROLL_STORAGE__S3_ENDPOINT and that it is up"
        else:
            why = type(exc).__name__
        return errors.StorageError(f"could not {doing} {self.description}: {why}")

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await obstore.put_async(self._store, self.prefix + key, data, attributes={"Content-Type": content_type},
                                    use_multipart=False)
        except Exception as exc:
            raise self._fail(exc, "write to") from None

    async def get(self, key: str) -> bytes | None:
        try:
            result = await obstore.get_async(self._store, self.prefix + key)
            return bytes(await result.bytes_async())
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._fail(exc, "read from") from None

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        try:
            await obstore.delete_async(self._store, [self.prefix + k for k in keys])
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._fail(exc, "delete from") from None

    async def list(self, prefix: str) -> AsyncIterator[StoredObject]:
        try:
            async for batch in obstore.list(self._store, self.prefix + prefix):
                for meta in batch:
                    yield StoredObject(meta["path"][len(self.prefix):], meta["size"], meta["last_modified"])
        except Exception as exc:
            raise self._fail(exc, "list") from None

    async def close(self) -> None:
        return None
