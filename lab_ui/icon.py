"""The tab icon, drawn here so the page needs nothing from the internet.

A `:material/...:` page icon makes the browser fetch an SVG from fonts.gstatic.com for the favicon
(the icons in the page itself come from Streamlit's bundled Material Symbols font); offline that
fetch fails over and over. A small image drawn with Pillow is served by the app itself.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw


@lru_cache(maxsize=1)
def app_icon() -> Image.Image:
    """A 64×64 tile with a falling perplexity curve: the lab's picture of training."""
    size = 64
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=14, fill=(255, 75, 75, 255))
    curve = [(10 + x, 14 + int(36 * (1 - (1 - x / 44) ** 3))) for x in range(0, 45, 4)]
    draw.line(curve, fill=(255, 255, 255, 255), width=6, joint="curve")
    return img
