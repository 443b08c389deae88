"""Variants rendered on request, bounded (issue 27): 20 different large variants asked for at once.

Run by hand:  .venv/bin/python bench/ondemand.py [--requests 20] [--megapixels 40]

Each request stands for ``GET /media/…/{width}.{fmt}`` of a variant never made, from its own client: its original
(a JPEG of ``--megapixels``, in real local storage) is read and rendered in filmroll's rendering processes, as
``Mirror.variant`` does. Two ways, in the same run:

* unbounded (before issue 27): every request reads its original and queues for the renderer at once;
* filmroll (``web.public.OnDemand``, as ``serve`` builds it): one render per variant, ``at_once`` (the rendering
  processes) reading and rendering, the rest waiting without a picture in memory, 503 past ``most``.

Midway, the mirror asks the same renderer for an ordinary post's ladder (a 1080 px picture): how long it waits says
whether the mirror still progresses. Reported: this process's peak RSS growth, the largest rendering process's peak
RSS, the wall time, and the mirror's wait.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from PIL import Image

from filmroll.service import pictures
from filmroll.service.renderer import Renderer
from filmroll.storage import open_storage
from filmroll.web.public import OnDemand

WIDTHS = (320, 640, 1080)
FORMATS = ("webp", "avif")


def _jpeg(width: int, height: int, seed: int) -> bytes:
    image = Image.effect_noise((width // 8, height // 8), 40 + seed).convert("RGB").resize((width, height))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def _run(way: str, storage, keys: list[str], ordinary: bytes) -> dict[str, float]:  # type: ignore[no-untyped-def]
    renderer = Renderer(2)  # serve's default: two rendering processes, twice as many renders in flight
    renders = OnDemand(at_once=renderer.processes)  # serve's bounds
    await renderer.render(ordinary, widths=(320,), formats=("webp",), max_pixels=pictures.DEFAULT_MAX_PIXELS)
    base, peak = _rss_mb(), 0.0
    stop = asyncio.Event()

    async def watch() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss_mb())
            await asyncio.sleep(0.02)

    async def variant(n: int, key: str) -> None:
        async def make() -> tuple[bytes, str]:
            data = await storage.get(key)
            made = await renderer.render(data, widths=(WIDTHS[n % 3],), formats=(FORMATS[n % 2],),
                                         max_pixels=pictures.DEFAULT_MAX_PIXELS)
            return made.variants[0].data, made.variants[0].content_type

        if way == "unbounded":
            await make()
        else:
            await renders.get(f"{key}/{n}", f"client-{n}", make)

    async def mirror() -> float:
        await asyncio.sleep(0.5)
        asked = time.monotonic()
        await renderer.render(ordinary, widths=WIDTHS, formats=FORMATS, max_pixels=pictures.DEFAULT_MAX_PIXELS)
        return time.monotonic() - asked

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    try:
        waited, *_ = await asyncio.gather(mirror(), *(variant(n, key) for n, key in enumerate(keys)))
        wall = time.monotonic() - started
    finally:
        stop.set()
        await watcher
        renderer.close()
    return {"wall": wall, "grew": peak - base, "mirror": waited,
            "children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--megapixels", type=float, default=40)
    parser.add_argument("--way", choices=("unbounded", "filmroll"), help="one way only (each runs in a process of "
                        "its own, so the rendering processes' peak RSS is its own)")
    args = parser.parse_args()
    if args.way is None:
        for way in ("unbounded", "filmroll"):
            subprocess.run([sys.executable, __file__, "--requests", str(args.requests), "--megapixels",
                            str(args.megapixels), "--way", way], check=True)
        return
    width = int((args.megapixels * 1e6 * 4 / 3) ** 0.5)
    height = width * 3 // 4
    with tempfile.TemporaryDirectory() as directory:
        storage = open_storage(f"file:{directory}")
        originals = [_jpeg(width, height, n) for n in range(4)]
        keys = []
        for n in range(args.requests):
            key = f"accounts/1/original-{n}.jpg"
            await storage.put(key, originals[n % len(originals)], "image/jpeg")
            keys.append(key)
        ordinary = _jpeg(1080, 1350, 99)
        found = await _run(args.way, storage, keys, ordinary)
        print(f"{args.way}: {args.requests} different variants of {width}x{height} originals "
              f"({sum(map(len, originals)) / len(originals) / 1e6:.1f} MB each as JPEG), each from its own client: "
              f"wall {found['wall']:.1f} s, this process +{found['grew']:.0f} MB at its peak, the largest rendering "
              f"process {found['children']:.0f} MB, the mirror's render waited {found['mirror']:.1f} s")
        await storage.close()


if __name__ == "__main__":
    asyncio.run(main())
