"""The media mirror's two costs, measured: fetching originals from the CDN, and rendering variants.

Run by hand:  .venv/bin/python bench/mirror.py [--images 12] [--downloads 200] [--latency-ms 80]

1. Originals per second through the sandbox's CDN (its own process) with emulated network latency, through
   filmroll's CdnClient, at 1, 4 and 8 downloads per host.
2. CPU ms per source picture for the default ladder (320, 640, 1080 in WebP and AVIF), filmroll's way
   (``service/pictures.render``: JPEG draft decoding, each width from the next larger one, the chosen encoder
   settings) against a naive baseline in the same run (full decode, LANCZOS from the full picture for each width,
   the encoders' default settings), per format; variants per CPU-second for both.
   A post past the ``eager_posts`` newest gets no variant yet, only its colours and placeholder: against the whole
   ladder resampled without encoding (how filmroll did it before), in the same run.
3. The encoder settings: bytes and SSIM against the resampled picture for each candidate, at 640 px.
4. Peak memory (RSS, this process and its rendering processes) with 8 pictures in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import aiohttp
import httpx
from common import cpu, start_sandbox
from PIL import Image

from filmroll.platform.cdn import CdnClient
from filmroll.sandbox.cdn import FEED_SIZES, draw
from filmroll.service import pictures
from filmroll.service.renderer import Renderer

WIDTHS = (320, 640, 1080)


# ----- 1. downloads --------------------------------------------------------------------------------------------

def cdn_urls(base: str, count: int) -> list[str]:
    """Signed CDN URLs of ``count`` distinct pictures: read from the sandbox's Graph API as filmroll would."""
    urls: list[str] = []
    index = 0
    while len(urls) < count:
        minted = httpx.post(f"{base}/_sandbox/tokens", json={"account": index}, timeout=10).json()
        token = minted["tokens"][0]["access_token"]
        media = httpx.get(f"{base}/me/media", params={"fields": "media_url,media_type,thumbnail_url", "limit": 100,
                                                     "access_token": token}, timeout=30).json()["data"]
        urls += [m.get("thumbnail_url") or m["media_url"] for m in media if m.get("media_url")]
        index += 1
    return urls[:count]


async def downloads(base: str, urls: list[str], per_host: int) -> tuple[float, float, int]:
    async with aiohttp.ClientSession() as session:
        cdn = CdnClient(session, hosts=[base])
        slots = asyncio.Semaphore(per_host)
        size = 0

        async def one(url: str) -> None:
            nonlocal size
            async with slots:
                data = await cdn.fetch(url)
            size += len(data)  # (not `size += len(await …)`: that reads `size` before the await)

        cpu0, wall0 = cpu(), time.perf_counter()
        await asyncio.gather(*(one(u) for u in urls))
        return len(urls) / (time.perf_counter() - wall0), 1000 * (cpu() - cpu0) / len(urls), size


# ----- 2. rendering ----------------------------------------------------------------------------------------------

def naive(data: bytes, fmt: str) -> int:
    """The way most code does it: decode in full, resample each width from the full picture, default settings."""
    image = Image.open(io.BytesIO(data))
    image.load()
    made = 0
    for width in WIDTHS:
        if width > image.width:
            continue
        resized = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        resized.save(out, format=fmt.upper())
        made += 1
    return made


def filmrolls(data: bytes, fmt: str) -> int:
    return len(pictures.render(data, widths=WIDTHS, formats=(fmt,)).variants)


def lazy_ladder(data: bytes, _: str) -> int:
    """A post past the eager ones, as filmroll did it before: every width of the ladder resampled, none encoded,
    the colours and the placeholder taken from the narrowest."""
    image = pictures.upright(data, largest=max(WIDTHS))
    current = image
    for width, height in reversed(pictures.ladder(WIDTHS, image.width, image.height)):
        current = current.resize((width, height), Image.Resampling.LANCZOS,
                                 reducing_gap=None if current is image and image.width < 2 * width else 3.0)
    small = current.convert("RGB")
    pictures._colours(small), pictures._placeholder(small)
    return 0


def lazy_filmrolls(data: bytes, _: str) -> int:
    return len(pictures.render(data, widths=WIDTHS, formats=()).variants)


def per_image(sources: list[bytes], fmt: str, way) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """CPU ms per source picture and variants per CPU-second (this process: the encoders' threads included)."""
    cpu0 = cpu()
    made = sum(way(data, fmt) for data in sources)
    spent = cpu() - cpu0
    return 1000 * spent / len(sources), made / spent


# ----- 3. encoder settings -----------------------------------------------------------------------------------------

def ssim(a: Image.Image, b: Image.Image) -> float:
    """Mean SSIM over 8x8 blocks of luma (Wang et al. 2004, constants for 8-bit), in pure Python."""
    x, y = a.convert("L"), b.convert("L")
    width, height = x.size
    px, py = x.tobytes(), y.tobytes()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    scores = []
    for top in range(0, height - 7, 8):
        for left in range(0, width - 7, 8):
            xs = [px[(top + r) * width + left + c] for r in range(8) for c in range(8)]
            ys = [py[(top + r) * width + left + c] for r in range(8) for c in range(8)]
            mx, my = sum(xs) / 64, sum(ys) / 64
            vx = sum((v - mx) ** 2 for v in xs) / 63
            vy = sum((v - my) ** 2 for v in ys) / 63
            cov = sum((p - mx) * (q - my) for p, q in zip(xs, ys, strict=True)) / 63
            scores.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return statistics.fmean(scores)


CANDIDATES = {
    "webp": [{"quality": 80, "method": 4}, {"quality": 80, "method": 2}, {"quality": 80, "method": 1},
             {"quality": 80, "method": 6}, {"quality": 75, "method": 2}],
    "avif": [{"quality": 75, "speed": 6}, {"quality": 60, "speed": 6}, {"quality": 60, "speed": 8},
             {"quality": 60, "speed": 9}, {"quality": 60, "speed": 9, "max_threads": 1}, {"quality": 55, "speed": 8},
             {"quality": 60, "speed": 10}],
}


def encoder_table(sources: list[bytes]) -> list[tuple[str, dict[str, object], float, float, float]]:
    rows = []
    for fmt, candidates in CANDIDATES.items():
        for options in candidates:
            sizes, scores, spent = [], [], 0.0
            for data in sources:
                image = Image.open(io.BytesIO(data)).convert("RGB")
                reference = image.resize((640, round(image.height * 640 / image.width)), Image.Resampling.LANCZOS)
                out = io.BytesIO()
                cpu0 = cpu()
                reference.save(out, format=fmt.upper(), **options)
                spent += cpu() - cpu0
                sizes.append(len(out.getvalue()))
                scores.append(ssim(reference, Image.open(io.BytesIO(out.getvalue()))))
            rows.append((fmt, options, 1000 * spent / len(sources), statistics.fmean(sizes) / 1000,
                         statistics.fmean(scores)))
    return rows


# ----- 4. memory -------------------------------------------------------------------------------------------------

async def in_flight(sources: list[bytes], count: int) -> float:
    renderer = Renderer(2, in_flight=count)
    try:
        await asyncio.gather(*(renderer.render(data, widths=WIDTHS, formats=("webp", "avif"),
                                               max_pixels=pictures.DEFAULT_MAX_PIXELS)
                               for data in (sources * 4)[:count * 2]))
    finally:
        renderer.close()
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest rendering process
    return children


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=12, help="source pictures for the rendering figures")
    parser.add_argument("--downloads", type=int, default=200)
    parser.add_argument("--latency-ms", type=int, default=80, help="emulated CDN latency per request")
    args = parser.parse_args()
    sources = [draw(f"bench{n}_n.jpg", FEED_SIZES[n % len(FEED_SIZES)]) for n in range(args.images)]

    process, base = start_sandbox(seed=5)
    try:
        urls = cdn_urls(base, args.downloads)
        httpx.patch(f"{base}/_sandbox/switches", json={"latency_ms": args.latency_ms}, timeout=10)
        print(f"1. {len(urls)} originals from the sandbox CDN, {args.latency_ms} ms latency each:")
        for per_host in (1, 4, 8):
            rate, cpu_ms, size = asyncio.run(downloads(base, urls, per_host))
            print(f"   {per_host} per host: {rate:6.1f} originals/s, {cpu_ms:.2f} ms CPU each, "
                  f"{size / len(urls) / 1000:.0f} KB on average")
    finally:
        process.terminate()
        process.wait(10)

    print(f"\n2. CPU per source picture, ladder {WIDTHS}, {args.images} pictures at Instagram's sizes:")
    print(f"   {'format':6} {'naive ms':>9} {'filmroll ms':>12} {'naive var/s':>12} {'filmroll var/s':>15} "
          f"{'gain':>6}")
    for fmt in ("webp", "avif"):
        naive_ms, naive_rate = per_image(sources, fmt, naive)
        ours_ms, ours_rate = per_image(sources, fmt, filmrolls)
        print(f"   {fmt:6} {naive_ms:9.0f} {ours_ms:12.0f} {naive_rate:12.1f} {ours_rate:15.1f} "
              f"{ours_rate / naive_rate:5.1f}x")
    both_naive = sum(per_image(sources, f, naive)[0] for f in ("webp", "avif"))
    both_ours = per_image(sources, "both", lambda d, _: len(pictures.render(d, widths=WIDTHS).variants))[0]
    print(f"   both formats, with colours and placeholder: naive {both_naive:.0f} ms, filmroll {both_ours:.0f} ms "
          "per picture")
    before_ms, ours_ms = per_image(sources, "", lazy_ladder)[0], per_image(sources, "", lazy_filmrolls)[0]
    print(f"   a post past the eager ones (colours and placeholder, no variant): the whole ladder resampled "
          f"{before_ms:.0f} ms, filmroll (the narrowest width only) {ours_ms:.0f} ms per picture, "
          f"{before_ms / ours_ms:.1f}x")

    print("\n3. Encoders at 640 px (CPU ms per picture, KB, SSIM against the resampled picture):")
    for fmt, options, spent, size, score in encoder_table(sources[: max(4, args.images // 3)]):
        chosen = " <- filmroll" if pictures.ENCODERS[fmt] == options else ""
        print(f"   {fmt:5} {options!s:32} {spent:7.1f} ms {size:7.1f} KB  SSIM {score:.4f}{chosen}")

    peak_child = asyncio.run(in_flight(sources, 8))
    print(f"\n4. 8 pictures in flight over 2 rendering processes: worker peak RSS {rss_mb():.0f} MB, largest "
          f"rendering process {peak_child:.0f} MB")
    print(f"   ({os.cpu_count()} CPUs; AVIF's encoder threads are counted in the CPU figures)")


if __name__ == "__main__":
    main()
